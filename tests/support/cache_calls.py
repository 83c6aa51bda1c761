"""One Set or Get through a CacheService stub, as the tests of several layers make them."""

from __future__ import annotations

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import from_value, to_value


async def put(stub: cache_pb2_grpc.CacheServiceAsyncStub, key: str, value: object) -> None:
    """Set `key` (TTL one hour)."""
    await stub.Set(
        cache_pb2.SetRequest(key=key, value=to_value(value), ttl_seconds=3600), timeout=10
    )


async def get(stub: cache_pb2_grpc.CacheServiceAsyncStub, key: str) -> object:
    """The value of `key`, or MISSING."""
    reply = await stub.Get(cache_pb2.GetRequest(key=key), timeout=10)
    return from_value(reply.value) if reply.found else MISSING


MISSING = "<missing>"
