"""The benchmark harness: marketcache side by side with a bare-gRPC floor and Redis."""
