"""The RPC boundary: protobuf in and out, domain errors to gRPC status.

- `servicer`: the CacheService handlers (thin: check, route, call the store);
- `operator_rpcs`: Scan, Export and Import (a mixin of the servicer);
- `write_batch`: WriteBatch, a status per op;
- `routing`: a call served here or forwarded one hop to its prefix's owner;
- `values`: a request's JSON value checked and serialized.
"""
