"""Concurrent clients read and write a few keys through kill -9, restart and pause of
cache nodes; the history they record must be linearizable, key by key."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.nemesis.linearizability import READ, WRITE, Op, check_register
from services.cache.ownership.membership import preferred
from services.client import CacheClient, CacheError
from tests.ownership.cluster import LEASE_SECONDS, Cluster
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.slow]

NODES = ("node-1", "node-2", "node-3")
CLIENTS = 6
CALL_TIMEOUT = 1.0


def _prefix_owned_by(node: str) -> str:
    return next(p for p in (f"reg{i}" for i in range(100)) if preferred(p, NODES) == node)


# One register per node: every nemesis below hits the owner of one of them.
KEYS = [f"{_prefix_owned_by(node)}:x" for node in NODES]


class History:
    """The operations clients saw, per key, on the test's monotonic clock."""

    def __init__(self) -> None:
        self.ops: dict[str, list[Op]] = {key: [] for key in KEYS}
        self.completed = 0
        self.outcomes: Counter[str] = Counter()

    async def client(self, index: int, seed: str, stop: asyncio.Event) -> None:
        rng = random.Random(index)
        cache = CacheClient(seed, timeout=CALL_TIMEOUT)
        written = 0
        try:
            while not stop.is_set():
                key = rng.choice(KEYS)
                invoke = time.monotonic()
                if rng.random() < 0.5:
                    try:
                        value = await cache.get(key)
                    except CacheError:
                        self.outcomes["read failed"] += 1
                        await _pause(stop)
                        continue  # a read that returned nothing constrains nothing
                    self._add(key, Op(READ, value, invoke, time.monotonic(), index))
                else:
                    written += 1
                    value = f"c{index}-{written}"
                    try:
                        await cache.set(key, value, ttl=3600)
                    except CacheError:
                        self.outcomes["write unknown"] += 1
                        self.ops[key].append(Op(WRITE, value, invoke, None, index))
                        await _pause(stop)
                        continue
                    self._add(key, Op(WRITE, value, invoke, time.monotonic(), index))
        finally:
            await cache.close()

    def _add(self, key: str, op: Op) -> None:
        self.ops[key].append(op)
        self.completed += 1
        self.outcomes[f"{op.kind} ok"] += 1

    async def more(self, count: int, within: float = 60.0) -> None:
        """Until `count` more operations completed."""
        target = self.completed + count
        await eventually(lambda: self.completed >= target, within, f"fewer than {count} more ops")


async def _pause(stop: asyncio.Event) -> None:
    # After a failure, a short back-off (an event wait, not a bare sleep).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), 0.05)


def _write_lock_free(db: Path) -> bool:
    """Whether some process could take SQLite's write lock now (a paused holder blocks all)."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=0.5)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


async def test_reads_and_writes_stay_linearizable_through_crashes_and_pauses(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.db"
    cluster = Cluster(f"sqlite:///{db}", tmp_path, CACHE_DETECT_LOCAL_EXITS="false")
    history = History()
    stop = asyncio.Event()
    clients: list[asyncio.Task[None]] = []
    try:
        await cluster.start(*NODES)
        await cluster.wait_members(NODES)
        clients = [
            asyncio.create_task(history.client(i, cluster.nodes[NODES[i % 3]].grpc_address, stop))
            for i in range(CLIENTS)
        ]
        await history.more(100)

        # kill -9 the owner of KEYS[2]; its prefix moves once the lease expires.
        crashed_prefix = KEYS[2].partition(":")[0]
        cluster.nodes["node-3"].kill9()
        await eventually(
            lambda: _moved(cluster, "node-1", crashed_prefix, "node-3"),
            LEASE_SECONDS + 5,
            "the crashed node's prefix was not taken over",
        )
        await history.more(100)
        await cluster.restart("node-3")
        await history.more(100)

        # Pause the owner of KEYS[0] for longer than its lease, then wake it.
        paused_prefix = KEYS[0].partition(":")[0]
        paused = cluster.nodes["node-1"].popen
        for _attempt in range(20):
            paused.send_signal(signal.SIGSTOP)
            if await asyncio.to_thread(_write_lock_free, db):
                break
            # Stopped inside a commit: it holds SQLite's write lock and blocks every
            # node until it runs again. Let it go and pause it at another moment.
            paused.send_signal(signal.SIGCONT)
            await history.more(20)
        else:
            pytest.fail("node-1 was always paused holding the write lock")
        try:
            await eventually(
                lambda: _moved(cluster, "node-2", paused_prefix, "node-1"),
                LEASE_SECONDS + 5,
                "the paused node's prefix was not taken over",
            )
            await history.more(50)
        finally:
            paused.send_signal(signal.SIGCONT)
        await history.more(200)
    finally:
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)
        await cluster.close()

    print(f"history: {dict(history.outcomes)}")
    for key, ops in history.ops.items():
        verdict = check_register(ops)
        assert verdict.ok, f"{key}: not linearizable; stuck at {verdict.stuck}"
    assert history.outcomes["read ok"] > 200 and history.outcomes["write ok"] > 200
    assert history.outcomes["write unknown"] > 0  # the nemesis did hit calls in flight
    assert all(len({op.value for op in ops if op.kind == READ}) > 3 for ops in history.ops.values())


async def _moved(cluster: Cluster, asked: str, prefix: str, old: str) -> bool:
    owner = await cluster.owner(asked, prefix)
    return owner.node_id not in ("", old) and owner.epoch > 0 and owner.node_id in cluster.nodes
