# ruff: noqa: N802  (gRPC method names are the proto's)
"""The floor: a bare grpc.aio CacheService over a plain dict, the cost of Python gRPC itself.

Run as `python -m bench.floor`; it listens on 127.0.0.1:0 and writes its address
to $MARKETCACHE_READY_FILE, like the real services. It has no interceptors, no
validation, no TTLs and no persistence: marketcache can only approach it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from marketcache.v1 import cache_pb2, cache_pb2_grpc

Context = grpc.aio.ServicerContext[object, object]


class DictCacheServicer(cache_pb2_grpc.CacheServiceServicer):
    """Get/MGet/Set/MSet answered from a dict; everything else is UNIMPLEMENTED."""

    def __init__(self) -> None:
        self._data: dict[str, struct_pb2.Value] = {}

    async def Get(self, request: cache_pb2.GetRequest, context: Context) -> cache_pb2.GetResponse:
        value = self._data.get(request.key)
        if value is None:
            return cache_pb2.GetResponse(key=request.key, found=False)
        return cache_pb2.GetResponse(
            key=request.key, found=True, value=value, ttl_remaining_seconds=3600
        )

    async def MGet(
        self, request: cache_pb2.MGetRequest, context: Context
    ) -> cache_pb2.MGetResponse:
        data = self._data
        result = cache_pb2.MGetResult
        results = []
        for key in request.keys:
            value = data.get(key)
            if value is None:
                results.append(result(key=key, found=False))
            else:
                results.append(result(key=key, found=True, value=value, ttl_remaining_seconds=3600))
        return cache_pb2.MGetResponse(results=results)

    async def Set(self, request: cache_pb2.SetRequest, context: Context) -> cache_pb2.SetResponse:
        self._data[request.key] = request.value
        return cache_pb2.SetResponse(key=request.key, ttl_seconds=request.ttl_seconds or 3600)

    async def MSet(
        self, request: cache_pb2.MSetRequest, context: Context
    ) -> cache_pb2.MSetResponse:
        for item in request.items:
            self._data[item.key] = item.value
        return cache_pb2.MSetResponse(written=len(request.items))

    async def WriteBatch(
        self, request: cache_pb2.WriteBatchRequest, context: Context
    ) -> cache_pb2.WriteBatchResponse:
        reply = cache_pb2.WriteBatchResponse()
        for op in request.ops:
            if op.HasField("set"):
                self._data[op.key] = op.set.value
                reply.results.add(key=op.key, ttl_seconds=op.set.ttl_seconds or 3600)
            else:
                deleted = self._data.pop(op.key, None) is not None
                reply.results.add(key=op.key, deleted=deleted)
        return reply

    async def Delete(
        self, request: cache_pb2.DeleteRequest, context: Context
    ) -> cache_pb2.DeleteResponse:
        deleted = self._data.pop(request.key, None) is not None
        return cache_pb2.DeleteResponse(key=request.key, deleted=deleted)

    async def Clear(
        self, request: cache_pb2.ClearRequest, context: Context
    ) -> cache_pb2.ClearResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor has no Clear")

    async def Health(
        self, request: cache_pb2.HealthRequest, context: Context
    ) -> cache_pb2.HealthResponse:
        return cache_pb2.HealthResponse(status="healthy", enabled=True, node_id="floor")

    async def GetMetrics(
        self, request: cache_pb2.GetMetricsRequest, context: Context
    ) -> cache_pb2.GetMetricsResponse:
        return cache_pb2.GetMetricsResponse(keys=len(self._data))

    async def GetOwnership(
        self, request: cache_pb2.GetOwnershipRequest, context: Context
    ) -> cache_pb2.GetOwnershipResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor has no owners")

    async def ListOwners(
        self, request: cache_pb2.ListOwnersRequest, context: Context
    ) -> cache_pb2.ListOwnersResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor has no owners")

    # Streams and listing are not benchmarked against the floor: it answers only the
    # unary key-value calls the side-by-side rows compare.
    async def Scan(
        self, request: cache_pb2.ScanRequest, context: Context
    ) -> cache_pb2.ScanResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor has no Scan")

    async def Watch(
        self, request: cache_pb2.WatchRequest, context: Context
    ) -> AsyncIterator[cache_pb2.WatchEvent]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor has no Watch")
        yield cache_pb2.WatchEvent()  # pragma: no cover (makes this a stream handler)

    async def Export(
        self, request: cache_pb2.ExportRequest, context: Context
    ) -> AsyncIterator[cache_pb2.ExportEntry]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor has no Export")
        yield cache_pb2.ExportEntry()  # pragma: no cover (makes this a stream handler)

    async def Import(
        self, request_iterator: AsyncIterator[cache_pb2.ImportRequest], context: Context
    ) -> cache_pb2.ImportResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor has no Import")


async def serve(ready_file: Path | None) -> None:
    """Serve on an ephemeral loopback port until SIGTERM or SIGINT."""
    # Same message limits as the real services (services.common.server), nothing else.
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ]
    )
    cache_pb2_grpc.add_CacheServiceServicer_to_server(DictCacheServicer(), server)
    # Health only so the harness can wait for SERVING the same way for every peer.
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    if ready_file is not None:
        tmp = ready_file.with_name(ready_file.name + ".tmp")
        tmp.write_text(json.dumps({"grpc": f"127.0.0.1:{port}", "pid": os.getpid()}))
        tmp.replace(ready_file)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop(1.0)


def main() -> None:
    """Entry point of `python -m bench.floor`."""
    ready = os.environ.get("MARKETCACHE_READY_FILE")
    asyncio.run(serve(Path(ready) if ready else None))


if __name__ == "__main__":
    main()
