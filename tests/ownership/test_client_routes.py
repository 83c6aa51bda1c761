"""The Python client's route table: learned from forwarded replies and redirects, used to
go straight to each prefix's owner, dropped when an owner fails."""

from __future__ import annotations

# The scripted servicer carries the RPC names of the generated base class.
# ruff: noqa: N802
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.client import CacheClient, CacheUnavailable
from services.common.errors import build_status
from tests.conftest import free_port, grpc_server
from tests.ownership.conftest import PA, PB, Pair


class ScriptedNode(cache_pb2_grpc.CacheServiceServicer):
    """A node that answers every data call with one error: a redirect, or a bare failure."""

    def __init__(self, redirect_to: str | None) -> None:
        self.redirect_to = redirect_to
        self.calls = 0

    async def _refuse(self, key: str, context: Any) -> Any:
        self.calls += 1
        if self.redirect_to is None:
            await context.abort_with_status(
                build_status(grpc.StatusCode.UNAVAILABLE, "the owner fell over mid-call")
            )
        prefix = key.partition(":")[0]
        redirect = cache_pb2.OwnerRedirect(
            prefix=prefix, node_id="node-b", address=self.redirect_to, epoch=1
        )
        await context.abort_with_status(
            build_status(grpc.StatusCode.UNAVAILABLE, f"not the owner of {prefix}", [redirect])
        )

    async def Get(self, request: cache_pb2.GetRequest, context: Any) -> Any:
        return await self._refuse(request.key, context)

    async def Set(self, request: cache_pb2.SetRequest, context: Any) -> Any:
        return await self._refuse(request.key, context)


class SilentNode(cache_pb2_grpc.CacheServiceServicer):
    """A node that takes every data call and never answers it (paused, or cut off
    behind a link that still accepts)."""

    def __init__(self) -> None:
        self.calls = 0

    async def _hang(self, context: Any) -> Any:
        self.calls += 1
        await asyncio.Event().wait()  # until the caller's deadline cancels the call

    async def Get(self, request: cache_pb2.GetRequest, context: Any) -> Any:
        return await self._hang(context)

    async def Set(self, request: cache_pb2.SetRequest, context: Any) -> Any:
        return await self._hang(context)


@asynccontextmanager
async def scripted(redirect_to: str | None) -> AsyncIterator[tuple[str, ScriptedNode]]:
    node = ScriptedNode(redirect_to)  # type: ignore[abstract]  # Get and Set are enough
    add = cache_pb2_grpc.add_CacheServiceServicer_to_server
    async with grpc_server(lambda server: add(node, server)) as (address, _):
        yield address, node


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[CacheClient]:
    c = CacheClient(pair.a.address, timeout=5)
    try:
        yield c
    finally:
        await c.close()


async def test_the_client_learns_an_owner_and_then_calls_it_directly(
    pair: Pair, client: CacheClient
) -> None:
    await client.set(f"{PB}:k", {"v": 1})
    assert client.transport.routes() == {PB: pair.b.address}
    assert pair.forwarded("node-a", "Set") == 1
    assert await client.get(f"{PB}:k") == {"v": 1}
    assert await client.delete(f"{PB}:k") is True
    assert (pair.forwarded("node-a", "Get"), pair.forwarded("node-a", "Delete")) == (0, 0)
    await client.set(f"{PA}:k", 1)  # the seed owns this one: nothing to learn
    assert client.transport.routes() == {PB: pair.b.address}


async def test_the_client_splits_batches_by_owner(pair: Pair, client: CacheClient) -> None:
    await client.set(f"{PB}:seen", 0)  # learn PB's owner
    written = await client.mset([(f"{PA}:1", "a1", 60), (f"{PB}:1", "b1", 60), (f"{PA}:2", 2, 60)])
    assert written == 3
    keys = [f"{PB}:1", f"{PA}:none", f"{PA}:1", f"{PB}:none", f"{PA}:2"]
    assert await client.mget(keys) == ["b1", None, "a1", None, 2]
    # One call per owner, each direct: the seed forwarded nothing.
    assert (pair.forwarded("node-a", "MSet"), pair.forwarded("node-a", "MGet")) == (0, 0)
    with pytest.raises(Exception, match=r"keys\[3\]"):  # errors name the caller's index
        await client.mget([f"{PA}:1", f"{PB}:1", f"{PB}:2", "no-prefix"])


async def test_the_client_follows_an_owner_redirect(pair: Pair, client: CacheClient) -> None:
    await client.set(f"{PB}:k", "there")
    async with scripted(redirect_to=pair.b.address) as (address, node):
        redirected = CacheClient(address, timeout=5)
        try:
            assert await redirected.get(f"{PB}:k") == "there"
            assert redirected.transport.routes() == {PB: pair.b.address}
            await redirected.set(f"{PB}:k", "again")  # straight to the owner now
            assert node.calls == 1
        finally:
            await redirected.close()


async def test_a_dead_owner_is_forgotten_and_the_call_goes_through_the_seed(
    pair: Pair, client: CacheClient
) -> None:
    await client.set(f"{PB}:k", "v")
    dead = f"127.0.0.1:{free_port()}"
    client.transport.learn(PB, dead)
    assert await client.get(f"{PB}:k") == "v"  # refused connection: retried at the seed
    # ... and relearned from its forwarded reply.
    assert client.transport.routes() == {PB: pair.b.address}
    client.transport.learn(PB, dead)
    await client.set(f"{PB}:k", "w")  # never sent, so safe to send again
    assert await client.get(f"{PB}:k") == "w"


async def test_a_write_whose_outcome_is_unknown_is_not_sent_again(
    pair: Pair, client: CacheClient
) -> None:
    await client.set(f"{PB}:k", "v")
    async with scripted(redirect_to=None) as (address, node):
        client.transport.learn(PB, address)
        assert await client.get(f"{PB}:k") == "v"  # a read is safe to repeat elsewhere
        client.transport.learn(PB, address)
        with pytest.raises(CacheUnavailable, match="fell over mid-call"):
            await client.set(f"{PB}:k", "w")
        assert node.calls == 2
    assert await client.get(f"{PB}:k") == "v"


@pytest.mark.parametrize("op", ["get", "set"])
async def test_an_owner_that_never_answers_is_forgotten_after_the_deadline(
    pair: Pair, op: str
) -> None:
    # A call to a learned owner that ends DEADLINE_EXCEEDED (the owner paused, or cut
    # off behind a link that still accepts) used to leave the route in place: every
    # later call on the prefix went to the silent node and timed out in turn, for as
    # long as it stayed silent, although the seed would have forwarded it to the
    # prefix's new owner.
    client = CacheClient(pair.a.address, timeout=1)
    silent = SilentNode()  # type: ignore[abstract]  # Get and Set are enough
    add = cache_pb2_grpc.add_CacheServiceServicer_to_server
    try:
        await client.set(f"{PB}:k", "v")
        async with grpc_server(lambda server: add(silent, server)) as (address, _):
            client.transport.learn(PB, address)
            call = client.get(f"{PB}:k") if op == "get" else client.set(f"{PB}:k", "w")
            with pytest.raises(CacheUnavailable, match="DEADLINE_EXCEEDED"):
                await call
            assert silent.calls == 1
            assert PB not in client.transport.routes()
            # The next call goes through the seed, which forwards it to the owner.
            assert await client.get(f"{PB}:k") in ("v", "w")
            assert silent.calls == 1
            assert client.transport.routes() == {PB: pair.b.address}
    finally:
        await client.close()
