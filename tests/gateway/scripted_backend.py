"""A real gRPC CacheService whose answers a test scripts through the key it asks for.

It lets the gateway tests drive every gRPC status code, rich details, slow
answers and metadata echoes over the wire, which the real cache (rightly)
never produces on demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.errors import ServiceError, abort, invalid_argument
from services.common.json_value import to_value

SERVICE = "marketcache.v1.CacheService"


class ScriptedCache(cache_pb2_grpc.CacheServiceServicer):
    """Get("code:NAME") fails with that code; Get("slow:x") never answers; else echoes."""

    def __init__(self) -> None:
        self.never = asyncio.Event()
        self.seen: list[cache_pb2.SetRequest] = []

    async def Get(  # noqa: N802 - gRPC method name
        self, request: cache_pb2.GetRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> cache_pb2.GetResponse:
        prefix, _, rest = request.key.partition(":")
        if prefix == "code":
            code = grpc.StatusCode[rest]
            if code is grpc.StatusCode.INVALID_ARGUMENT:
                await abort(context, invalid_argument("bad key for the test", "key"))
            await abort(context, ServiceError(code, f"scripted {rest}"))
        if prefix == "plain":  # a status without rich details
            await context.abort(grpc.StatusCode[rest], f"plain {rest}")
        if prefix == "slow":
            await self.never.wait()
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        return cache_pb2.GetResponse(
            key=request.key,
            found=True,
            value=to_value({"metadata": metadata}),
            ttl_remaining_seconds=42,
        )

    async def Set(  # noqa: N802 - gRPC method name
        self, request: cache_pb2.SetRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> cache_pb2.SetResponse:
        self.seen.append(request)
        return cache_pb2.SetResponse(key=request.key, ttl_seconds=request.ttl_seconds or 3600)

    async def MGet(  # noqa: N802 - gRPC method name
        self, request: cache_pb2.MGetRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> cache_pb2.MGetResponse:
        return cache_pb2.MGetResponse(
            results=[cache_pb2.MGetResult(key=k, found=False) for k in request.keys]
        )


@asynccontextmanager
async def scripted_backend(
    serving: bool = True, health_names: tuple[str, ...] = (SERVICE,)
) -> AsyncIterator[tuple[str, ScriptedCache]]:
    """A ScriptedCache on 127.0.0.1:0 with grpc.health.v1; yields (address, servicer).

    Health answers for each of `health_names`, so one server can stand in for
    every backend in a readiness test.
    """
    server = grpc.aio.server()
    # The RPCs it leaves out answer UNIMPLEMENTED, which the 501 test relies on.
    servicer = ScriptedCache()  # type: ignore[abstract]
    cache_pb2_grpc.add_CacheServiceServicer_to_server(servicer, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in health_names:
        await health.set(name, status)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        servicer.never.set()
        await server.stop(None)
