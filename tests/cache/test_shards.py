"""Prefixes sharded over two PostgreSQL databases (CACHE_DB_URLS): homes, ownership and
fencing per shard, the start-up refusal of stranded data, and the rebalance tool."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.ownership.leases import LeaseOwnership
from services.cache.ownership.membership import preferred
from services.cache.server import CacheServer
from services.cache.shards.homes import StrandedDataError
from services.cache.shards.sharded_ownership import ShardedOwnership
from services.common.json_value import to_value
from tests.cache.harness import cache_stub
from tests.cache.shard_support import (
    home_of,
    prefixes_in,
    prefixes_stored,
    sharded_server,
    sql,
)
from tests.support.cache_calls import MISSING, get, put
from tests.support.polling import eventually
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dbs() -> Iterator[list[str]]:
    """Three fresh databases on the machine's server (shards A, B and a spare C)."""
    with fresh_database() as a, fresh_database() as b, fresh_database() as c:
        yield [a, b, c]


def rebalance(source: list[str], target: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the rebalance tool as an operator would."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cache.rebalance",
            "--from",
            ",".join(source),
            "--to",
            ",".join(target),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )


async def _put_each(stub: cache_pb2_grpc.CacheServiceAsyncStub, prefixes: list[str]) -> None:
    """One key per prefix, `<prefix>:k`, whose value is the prefix."""
    for p in prefixes:
        await put(stub, f"{p}:k", p)


async def test_each_prefix_lives_in_its_home_shard_only(dbs: list[str], tmp_path: Path) -> None:
    urls = dbs[:2]
    prefixes = [f"s{i}" for i in range(40)]
    server = sharded_server(tmp_path, urls)
    await server.start()
    try:
        async with cache_stub(server.address) as stub:
            await _put_each(stub, prefixes)
            assert [await get(stub, f"{p}:k") for p in prefixes] == prefixes
            health = await stub.Health(cache_pb2.HealthRequest())
            assert (health.status, health.reason) == ("healthy", "")
            assert health.metrics.keys == 40
            owners = await stub.ListOwners(cache_pb2.ListOwnersRequest())
            assert {o.prefix for o in owners.owners} == set(prefixes)
        # The node is a member (heartbeats) in every shard.
        for url in urls:
            assert sql(url, "SELECT node_id FROM cache_members") == [("node-a",)]
    finally:
        await server.stop()
    homes = [{p for p in prefixes if home_of(p, urls) == i} for i in range(2)]
    assert all(len(h) >= 10 for h in homes), homes  # spread over both
    for url, homed in zip(urls, homes, strict=True):
        assert prefixes_stored(url) == homed
        leased = {p for (p,) in sql(url, "SELECT prefix FROM cache_leases")}
        assert leased == homed, "a lease row outside its prefix's home shard"

    # A restart reads every entry back, whatever shard holds it; the order of the
    # list does not matter (homes follow the databases, not their positions).
    again = sharded_server(tmp_path, list(reversed(urls)))
    await again.start()
    try:
        async with cache_stub(again.address) as stub:
            assert [await get(stub, f"{p}:k") for p in prefixes] == prefixes
    finally:
        await again.stop()


async def test_a_batch_over_both_shards_lands_in_each(dbs: list[str], tmp_path: Path) -> None:
    urls = dbs[:2]
    here, there = prefixes_in(0, urls, 3), prefixes_in(1, urls, 3)
    server = sharded_server(tmp_path, urls)
    await server.start()
    try:
        async with cache_stub(server.address) as stub:
            keys = [f"{p}:x" for p in here + there]
            items = [cache_pb2.MSetItem(key=k, ttl_seconds=600) for k in keys]
            for item, key in zip(items, keys, strict=True):
                item.value.string_value = key
            written = await stub.MSet(cache_pb2.MSetRequest(items=items))
            assert written.written == 6
            reply = await stub.MGet(cache_pb2.MGetRequest(keys=[*reversed(keys), "nope:1"]))
            assert [r.value.string_value for r in reply.results[:6]] == list(reversed(keys))
            assert not reply.results[6].found
    finally:
        await server.stop()
    assert prefixes_stored(urls[0]) == set(here)
    assert prefixes_stored(urls[1]) == set(there)


NODES = ("node-a", "node-b")


async def test_ownership_takeover_and_fencing_are_per_shard(dbs: list[str], tmp_path: Path) -> None:
    urls = dbs[:2]
    # For each shard, a prefix node-a should own and one node-b should own.
    mine = {s: next(p for p in prefixes_in(s, urls, 50, "o") if preferred(p, NODES) == "node-a")
            for s in (0, 1)}  # fmt: skip
    theirs = {s: next(p for p in prefixes_in(s, urls, 50, "o") if preferred(p, NODES) == "node-b")
              for s in (0, 1)}  # fmt: skip
    # The product's default lease. Both nodes run their four heartbeats (two shards each)
    # on this test's one event loop: under load they took 1-2 s and came up to 3.4 s
    # apart, so a 2 s lease lapsed ("membership heartbeat has not succeeded in time").
    # Nothing here waits for a lease to expire.
    servers = {
        n: sharded_server(
            tmp_path / n, urls, CollectorRegistry(), CACHE_NODE_ID=n, CACHE_LEASE_SECONDS="10"
        )
        for n in NODES
    }
    for server in servers.values():
        await server.start()
    try:
        a, b = servers["node-a"], servers["node-b"]
        # In each shard: members() merges the shards, and a node that has seen the other
        # in one shard only takes the other's prefixes in the second itself.
        await eventually(
            lambda: all(
                {m.node_id for m in _shard(s, p).members() if m.alive} == set(NODES)
                for s in servers.values()
                for p in mine.values()
            ),
            30,
            "the nodes never saw each other in both shards",
        )
        async with cache_stub(a.address) as sa, cache_stub(b.address) as sb:
            for p in [*mine.values(), *theirs.values()]:
                await put(sa, f"{p}:k", "v1")  # node-a forwards node-b's prefixes
            for shard in (0, 1):
                for prefix, owner in ((mine[shard], "node-a"), (theirs[shard], "node-b")):
                    rows = sql(
                        urls[shard],
                        "SELECT owner_id, epoch FROM cache_leases WHERE prefix = %s",
                        (prefix,),
                    )
                    assert rows == [(owner, 1)], (shard, prefix, rows)
                    other = sql(
                        urls[1 - shard], "SELECT 1 FROM cache_leases WHERE prefix = %s", (prefix,)
                    )
                    assert other == [], "a lease row in the wrong shard"
                    await _agree(prefix, owner, sa, sb)

            # Fencing in shard 1: the lease of node-a's prefix moves under it in that
            # database; node-a's next write there is refused at commit, not written.
            fenced = mine[1]
            sql(
                urls[1],
                "UPDATE cache_leases SET epoch = epoch + 1, owner_token = 'thief', "
                "owner_id = 'thief', expires_at = expires_at + 3600 WHERE prefix = %s",
                (fenced,),
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await put(sa, f"{fenced}:k", "zombie")
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "not current" in (refused.value.details() or "")
            assert sql(
                urls[1], "SELECT convert_from(value, 'UTF8') FROM cache_entries WHERE key = %s",
                (f"{fenced}:k",),
            ) != [("zombie",)]  # fmt: skip
            # Shard 0 is untouched: node-a still writes its prefix there.
            await put(sa, f"{mine[0]}:k", "v2")
            assert await get(sb, f"{mine[0]}:k") == "v2"

        # Takeover in each shard: node-b stops (releasing its leases in both
        # databases); node-a takes its prefixes at a higher epoch, data intact.
        await b.stop()
        async with cache_stub(a.address) as sa:
            for shard in (0, 1):
                prefix = theirs[shard]

                async def taken(key: str = f"{prefix}:k") -> bool:
                    # node-a notices node-b left at its next heartbeat in that shard.
                    try:
                        return await get(sa, key) == "v1"
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        return False

                await eventually(taken, 30, f"node-a never took over {prefix!r}")
                await put(sa, f"{prefix}:k", "v3")
                rows = sql(
                    urls[shard],
                    "SELECT owner_id, epoch FROM cache_leases WHERE prefix = %s",
                    (prefix,),
                )
                assert rows == [("node-a", 2)], (shard, rows)
            assert await get(sa, "never:k") == MISSING
    finally:
        for server in servers.values():
            await server.stop()


def _shard(server: CacheServer, prefix: str) -> LeaseOwnership:
    """The leases of `prefix`'s home shard on a sharded `server`."""
    assert isinstance(server.ownership, ShardedOwnership)
    return server.ownership.home(prefix)


async def _agree(prefix: str, owner: str, *stubs: cache_pb2_grpc.CacheServiceAsyncStub) -> None:
    """Wait until every node names `owner` at epoch 1 (a node learns others' leases
    at its next heartbeat)."""

    async def agreed() -> bool:
        for stub in stubs:
            reply = await stub.GetOwnership(cache_pb2.GetOwnershipRequest(prefix=prefix))
            if (reply.owner.node_id, reply.owner.epoch) != (owner, 1):
                return False
        return True

    await eventually(agreed, 30, f"the nodes never agreed that {owner} owns {prefix!r}")


async def test_a_changed_list_is_refused_until_the_rebalance_tool_moves_the_data(
    dbs: list[str], tmp_path: Path
) -> None:
    old, new = dbs[:2], dbs
    prefixes = [f"r{i}" for i in range(60)]
    moving = [p for p in prefixes if home_of(p, new) == 2]
    assert moving, "no prefix homes in the new shard"
    assert all(home_of(p, new) == home_of(p, old) for p in prefixes if p not in moving)

    server = sharded_server(tmp_path, old)
    await server.start()
    try:
        async with cache_stub(server.address) as stub:
            await _put_each(stub, prefixes)
        # Refused while a cache is alive in any database.
        busy = rebalance(old, new)
        assert busy.returncode == 1
        assert "cache members are alive" in busy.stderr and "node-a" in busy.stderr
    finally:
        await server.stop()
    epochs = dict(sql(old[0], "SELECT prefix, epoch FROM cache_leases")) | dict(
        sql(old[1], "SELECT prefix, epoch FROM cache_leases")
    )

    # Started on the new list before moving: refused, naming the variable and the tool.
    early = sharded_server(tmp_path, new)
    with pytest.raises(StrandedDataError) as stranded:
        await early.start()
    await early.stop()
    message = str(stranded.value)
    assert "CACHE_DB_URLS" in message and "services.cache.rebalance" in message
    assert f"{len(moving)} prefixes" in message

    done = rebalance(old, new)
    assert done.returncode == 0, done.stderr
    assert f"moved {len(moving)} prefixes ({len(moving)} rows)" in done.stdout
    again = rebalance(old, new)
    assert again.returncode == 0, again.stderr
    assert "moved 0 prefixes" in again.stdout  # idempotent

    for i, url in enumerate(new):
        assert prefixes_stored(url) == {p for p in prefixes if home_of(p, new) == i}
    # Each moved prefix's epoch came along, released: the next owner goes above it.
    for p in moving:
        assert sql(
            new[2], "SELECT epoch, expires_at FROM cache_leases WHERE prefix = %s", (p,)
        ) == [(epochs[p], 0.0)]

    moved = sharded_server(tmp_path, new)
    await moved.start()
    try:
        async with cache_stub(moved.address) as stub:
            assert [await get(stub, f"{p}:k") for p in prefixes] == prefixes
            await put(stub, f"{moving[0]}:k", "after")
    finally:
        await moved.stop()
    assert sql(new[2], "SELECT epoch FROM cache_leases WHERE prefix = %s", (moving[0],)) == [
        (epochs[moving[0]] + 1,)
    ]


async def test_watch_serves_every_prefix_whatever_its_home_shard(
    dbs: list[str], tmp_path: Path
) -> None:
    urls = dbs[:2]
    homed = prefixes_in(0, urls, 1, "w") + prefixes_in(1, urls, 1, "w")
    server = sharded_server(tmp_path, urls)
    await server.start()
    try:
        async with cache_stub(server.address) as stub:
            call = stub.Watch(cache_pb2.WatchRequest(prefixes=homed), timeout=120)

            async def next_event() -> cache_pb2.WatchEvent:
                event = await call.read()
                assert isinstance(event, cache_pb2.WatchEvent), event
                return event

            try:
                # Both prefixes are watched (neither is reset as homed elsewhere).
                for prefix in homed:
                    event = await next_event()
                    assert (event.prefix, event.WhichOneof("event")) == (prefix, "started"), event
                written = {}
                for prefix in homed:
                    reply = await stub.Set(
                        cache_pb2.SetRequest(key=f"{prefix}:k", value=to_value(1), ttl_seconds=600),
                        timeout=30,
                    )
                    written[prefix] = reply.position
                invalidated: dict[str, tuple[list[str], cache_pb2.Position]] = {}
                beaten: set[str] = set()

                async def both_invalidated_and_beating() -> None:
                    while set(invalidated) != set(homed) or beaten != set(homed):
                        event = await next_event()
                        kind = event.WhichOneof("event")
                        assert kind in ("invalidation", "heartbeat"), event
                        if kind == "invalidation":
                            keys = list(event.invalidation.keys)
                            invalidated[event.prefix] = (keys, event.position)
                        else:
                            beaten.add(event.prefix)

                await asyncio.wait_for(both_invalidated_and_beating(), 60)
            finally:
                call.cancel()
    finally:
        await server.stop()
    # Each prefix's invalidation stands at its write's commit, in its own home shard.
    assert invalidated == {p: ([f"{p}:k"], written[p]) for p in homed}
    assert [home_of(p, urls) for p in homed] == [0, 1]
