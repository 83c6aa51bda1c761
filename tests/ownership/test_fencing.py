"""A paused owner: writes it admitted before the pause are refused after the takeover,
nobody reads an old value after the new one, and the old owner then forwards."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator

import grpc
import psycopg
import pytest

from marketcache.v1 import cache_pb2
from services.cache.ownership.membership import preferred
from services.common.json_value import to_value
from tests.ownership.cluster import LEASE_SECONDS, Cluster, get, put
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.slow]

NODES = ("node-a", "node-b")
OLD_OWNER, NEW_OWNER = NODES
PREFIX = next(p for p in (f"fence{i}" for i in range(100)) if preferred(p, NODES) == OLD_OWNER)
KEY = f"{PREFIX}:k"
IN_FLIGHT = 5


@contextlib.contextmanager
def writes_held(db_url: str) -> Iterator[Callable[[], None]]:
    """Hold back every commit touching PREFIX until `release()` (or the block ends).

    SQLite: we hold the database's write lock. PostgreSQL: we hold PREFIX's lease
    row FOR UPDATE, which the owner's fence (FOR SHARE) waits for.
    """
    if db_url.startswith("sqlite"):
        lite = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        lite.execute("BEGIN IMMEDIATE")

        def release() -> None:
            if lite.in_transaction:
                lite.execute("COMMIT")

        try:
            yield release
        finally:
            if lite.in_transaction:
                lite.execute("COMMIT")
            lite.close()
        return
    dsn = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as pg:
        pg.execute("SELECT 1 FROM cache_leases WHERE prefix = %s FOR UPDATE", (PREFIX,))
        yield pg.commit


async def test_a_paused_owner_can_neither_write_nor_serve_after_a_takeover(
    cluster: Cluster, db_url: str
) -> None:
    await cluster.start(*NODES)
    await cluster.wait_members(NODES)
    old, new = cluster.stub(OLD_OWNER), cluster.stub(NEW_OWNER)
    await put(old, KEY, "old")
    before = await cluster.settled_owner(PREFIX, NODES)
    assert before.node_id == OLD_OWNER
    started = cluster.metric(OLD_OWNER, "grpc_server_started_total", grpc_method="Set")

    paused = cluster.nodes[OLD_OWNER].popen
    with writes_held(db_url) as release:
        # Writes the owner admits under its lease, whose commit cannot happen yet.
        zombies = [
            asyncio.ensure_future(
                old.Set(cache_pb2.SetRequest(key=KEY, value=to_value(f"zombie{i}")), timeout=60)
            )
            for i in range(IN_FLIGHT)
        ]
        await eventually(
            lambda: (
                cluster.metric(OLD_OWNER, "grpc_server_started_total", grpc_method="Set")
                >= started + IN_FLIGHT
            ),
            10,
            "the owner never received the writes",
        )
        # One more round trip through its event loop: the handlers ran up to the commit.
        await old.Health(cache_pb2.HealthRequest(), timeout=10)
        paused.send_signal(signal.SIGSTOP)
        release()
    try:

        async def taken_over() -> bool:
            owner = await cluster.owner(NEW_OWNER, PREFIX)
            return owner.node_id == NEW_OWNER and owner.epoch > before.epoch

        await eventually(
            taken_over, 10 * LEASE_SECONDS, "the paused owner's prefix was not taken over"
        )
        await put(new, KEY, "new")
    finally:
        paused.send_signal(signal.SIGCONT)

    # From now on every read must see "new" (or a later write), through either node.
    seen: list[object] = []
    # (invoked, completed, value) of every read, on the monotonic clock.
    reads: list[tuple[float, float, object]] = []
    stop = asyncio.Event()

    async def reader(node: str) -> None:
        while not stop.is_set():
            with contextlib.suppress(grpc.aio.AioRpcError):
                invoked = time.monotonic()
                value = await get(cluster.stub(node), KEY)
                reads.append((invoked, time.monotonic(), value))
                seen.append(value)

    forwarded = cluster.metric(OLD_OWNER, "cache_forwarded_requests_total", method="Get")
    readers = [asyncio.create_task(reader(node)) for node in (OLD_OWNER, NEW_OWNER)]

    # What the old owner admitted before the pause is refused, not written.
    outcomes = await asyncio.gather(*zombies, return_exceptions=True)
    for outcome in outcomes:
        assert isinstance(outcome, grpc.aio.AioRpcError), f"a stale write succeeded: {outcome}"
        assert outcome.code() is grpc.StatusCode.UNAVAILABLE, outcome.details()
    assert cluster.metric(OLD_OWNER, "cache_forwarded_requests_total", method="Set") == 0
    if db_url.startswith("sqlite"):
        # Refused by the epoch check in the commit's transaction.
        assert cluster.metric(OLD_OWNER, "cache_fenced_writes_total") == IN_FLIGHT
    # (On PostgreSQL the server ended the paused session, idle in its transaction.)

    # The old owner, awake, forwards the prefix's reads to the new one. (A lease later,
    # being the prefix's rendezvous owner, it may take it back, at a new epoch.)
    await eventually(
        lambda: (
            cluster.metric(OLD_OWNER, "cache_forwarded_requests_total", method="Get") > forwarded
        ),
        10 * LEASE_SECONDS,
        "the old owner never forwarded a read",
    )
    await eventually(lambda: seen.count("new") >= 50, 30, "reads stalled")

    # A later write through the old owner lands, wherever the prefix is by then.
    await put(old, KEY, "later")
    acknowledged = time.monotonic()
    await eventually(
        lambda: seen and seen[-1] == "later", 30, "the later write never became visible"
    )
    stop.set()
    await asyncio.gather(*readers)

    assert set(seen) <= {"new", "later"}, f"stale or unacknowledged values read: {set(seen)}"
    # Real-time order, as linearizability has it: a read that began after "later" was
    # acknowledged, or after another read had returned it, must not see "new". (Reads
    # append as they complete, so a slower forwarded read that overlapped the write
    # may legitimately be listed after a faster one that already saw "later".)
    first_later = min([acknowledged] + [done for _, done, value in reads if value == "later"])
    undone = [(start, value) for start, _, value in reads if start > first_later and value == "new"]
    assert not undone, f"the later write was undone: {len(undone)} reads saw 'new' after it"
    for node in NODES:
        assert await get(cluster.stub(node), KEY) == "later"
