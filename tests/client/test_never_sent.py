"""never_sent: the client resends a write only when grpcio says no connection was made.

grpcio tells "connection refused" from "connection lost mid-call" only by its message,
so these tests provoke each for real: if a grpcio upgrade rewords the message, the
first test fails here instead of writes silently never being resent.
"""

from __future__ import annotations

# The servicer carries the RPC names of the generated base class.
# ruff: noqa: N802
import asyncio
import socket
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc
import pytest

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.client import never_sent
from tests.conftest import grpc_server


async def failed_set(address: str) -> grpc.aio.AioRpcError:
    """The error of one Set at `address`."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = cache_pb2_grpc.CacheServiceStub(channel).Set(
            cache_pb2.SetRequest(key="p:k", ttl_seconds=60), timeout=30
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        return caught.value


class SlowNode(cache_pb2_grpc.CacheServiceServicer):
    """Receives a Set and then either hangs (until its server stops) or answers UNAVAILABLE."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.received = asyncio.Event()

    async def Set(self, request: cache_pb2.SetRequest, context: Any) -> Any:
        self.received.set()
        if self.refuse:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "failed over, try the owner")
        await asyncio.Event().wait()  # until the server stops under the call


def serving(node: SlowNode) -> AbstractAsyncContextManager[tuple[str, grpc.aio.Server]]:
    return grpc_server(
        lambda server: cache_pb2_grpc.add_CacheServiceServicer_to_server(node, server)
    )


async def test_a_refused_connection_is_recognised_as_never_sent() -> None:
    with socket.socket() as bound:  # holds the port, never listens: connections are refused
        bound.bind(("127.0.0.1", 0))
        host, port = bound.getsockname()
        error = await failed_set(f"{host}:{port}")
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert never_sent(error), f"grpcio words a refused connection differently: {error.details()!r}"


async def test_a_call_the_server_received_and_then_lost_is_not_never_sent() -> None:
    node = SlowNode(refuse=False)  # type: ignore[abstract]  # Set is enough
    async with serving(node) as (address, server):
        call = asyncio.ensure_future(failed_set(address))
        await node.received.wait()
        await server.stop(None)  # the connection goes while the write is in the server
        error = await call
    assert error.code() is grpc.StatusCode.UNAVAILABLE, error.details()
    assert not never_sent(error)


async def test_an_unavailable_answered_by_the_server_is_not_never_sent() -> None:
    node = SlowNode(refuse=True)  # type: ignore[abstract]  # Set is enough
    async with serving(node) as (address, _):
        error = await failed_set(address)
    assert node.received.is_set()
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert not never_sent(error)
