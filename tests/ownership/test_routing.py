"""Two cache nodes in one process over one SQLite file: forwarding to the owner, batches
split and merged, forwarded calls never forwarded again, and membership health."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from marketcache.v1 import cache_pb2
from services.common.errors import status_details
from services.common.json_value import from_value, to_value
from services.common.wire import FORWARDED_BY, OWNER_HEADER
from tests.cache.harness import ADMIN_TOKEN, cache_stub
from tests.ownership.conftest import PA, PAIR_LEASE_SECONDS, PB, Pair
from tests.support.polling import eventually

ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


async def test_a_call_on_a_prefix_owned_elsewhere_is_forwarded_one_hop(pair: Pair) -> None:
    async with cache_stub(pair.a.address) as a:
        call = a.Set(cache_pb2.SetRequest(key=f"{PB}:k", value=to_value({"v": 1})))
        await call
        assert (OWNER_HEADER, f"{PB}={pair.b.address}") in tuple(await call.trailing_metadata())
        reply = await a.Get(cache_pb2.GetRequest(key=f"{PB}:k"))
        assert from_value(reply.value) == {"v": 1}
        local = a.Set(cache_pb2.SetRequest(key=f"{PA}:k", value=to_value(2)))
        await local
        assert not [k for k, _ in tuple(await local.trailing_metadata()) if k == OWNER_HEADER]
    assert pair.b.ownership.current_epoch(PB) == 1 and pair.a.ownership.current_epoch(PB) is None
    assert pair.a.ownership.current_epoch(PA) == 1
    assert (pair.forwarded("node-a", "Set"), pair.forwarded("node-a", "Get")) == (1, 1)


async def test_batches_are_split_by_owner_and_merged_in_order(pair: Pair) -> None:
    items = [(f"{PA}:1", 1), (f"{PB}:1", "b1"), (f"{PA}:2", [2]), (f"{PB}:2", None)]
    async with cache_stub(pair.a.address) as a:
        written = await a.MSet(
            cache_pb2.MSetRequest(
                items=[cache_pb2.MSetItem(key=k, value=to_value(v)) for k, v in items]
            )
        )
        assert written.written == 4
        keys = [f"{PB}:2", f"{PA}:none", f"{PA}:1", f"{PB}:1", f"{PB}:none", f"{PA}:2", f"{PB}:1"]
        reply = await a.MGet(cache_pb2.MGetRequest(keys=keys))
    assert [r.key for r in reply.results] == keys
    got = [from_value(r.value) if r.found else "<miss>" for r in reply.results]
    assert got == [None, "<miss>", 1, "b1", "<miss>", [2], "b1"]
    assert (pair.forwarded("node-a", "MSet"), pair.forwarded("node-a", "MGet")) == (1, 1)
    async with cache_stub(pair.b.address) as b:  # the other side sees the same
        again = await b.MGet(cache_pb2.MGetRequest(keys=keys))
    assert [from_value(r.value) if r.found else "<miss>" for r in again.results] == got


async def test_a_bad_item_anywhere_in_a_split_batch_writes_nothing(pair: Pair) -> None:
    items = [
        cache_pb2.MSetItem(key=f"{PA}:x", value=to_value(1)),
        cache_pb2.MSetItem(key=f"{PB}:x", value=to_value(2)),
        cache_pb2.MSetItem(key="no-prefix", value=to_value(3)),
    ]
    async with cache_stub(pair.a.address) as a:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await a.MSet(cache_pb2.MSetRequest(items=items))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "items[2].key" in str(caught.value.details())
        reply = await a.MGet(cache_pb2.MGetRequest(keys=[f"{PA}:x", f"{PB}:x"]))
    assert [r.found for r in reply.results] == [False, False]
    assert pair.forwarded("node-a", "MSet") == 0


async def test_clear_is_forwarded_with_the_admin_token(pair: Pair) -> None:
    async with cache_stub(pair.a.address) as a:
        await a.Set(cache_pb2.SetRequest(key=f"{PB}:k", value=to_value(1)))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await a.Clear(cache_pb2.ClearRequest(prefix=PB))
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        cleared = await a.Clear(cache_pb2.ClearRequest(prefix=PB), metadata=ADMIN)
        assert cleared.deleted == 1
    assert pair.forwarded("node-a", "Clear") == 1


async def test_a_forwarded_call_is_never_forwarded_again(pair: Pair) -> None:
    async with cache_stub(pair.a.address) as a:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await a.Get(cache_pb2.GetRequest(key=f"{PB}:k"), metadata=((FORWARDED_BY, "node-b"),))
    error = caught.value
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "node-b" in str(error.details())
    redirects = [cache_pb2.OwnerRedirect() for _ in status_details(error)]
    assert any(d.Unpack(r) for d, r in zip(status_details(error), redirects, strict=True))
    redirect = next(r for r in redirects if r.prefix)
    assert (redirect.prefix, redirect.node_id, redirect.address) == (
        PB,
        "node-b",
        pair.b.address,
    )
    assert pair.forwarded("node-a", "Get") == 0
    assert not any(d.Is(error_details_pb2.BadRequest.DESCRIPTOR) for d in status_details(error))


async def test_health_is_degraded_while_the_heartbeat_cannot_commit(
    pair: Pair, tmp_path: Path
) -> None:
    async with cache_stub(pair.a.address) as a:
        assert (await a.Health(cache_pb2.HealthRequest())).status == "healthy"
        # Hold the database's write lock: heartbeats (and commits) wait, reads go on.
        lock = sqlite3.connect(tmp_path / "cache.db", isolation_level=None, timeout=10)
        try:
            lock.execute("BEGIN IMMEDIATE")

            async def degraded() -> bool:
                reply = await a.Health(cache_pb2.HealthRequest())
                return reply.status == "degraded" and "no valid membership" in reply.reason

            # 3/4 of the pair's lease after the last heartbeat began, and a margin.
            await eventually(degraded, PAIR_LEASE_SECONDS * 3, "Health never said degraded")
        finally:
            lock.execute("ROLLBACK")
            lock.close()

        async def healthy() -> bool:
            return (await a.Health(cache_pb2.HealthRequest())).status == "healthy"

        await eventually(healthy, PAIR_LEASE_SECONDS * 3, "Health never recovered")
