"""Each fault class the clock and disk plugins register breaks what it says it breaks,
and heals it: the skewed node's wall clock is off by the offset, the slow node's
wall clock falls behind at 5 %, the full disk refuses writes RESOURCE_EXHAUSTED
while reads go on. Against a real nemesis cluster, one fault entered by hand."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from harness.nemesis import disk, netns
from harness.nemesis.cluster import NODES, NemesisCluster, fresh_postgres
from harness.nemesis.faults import FaultClass, FaultContext, fault_classes
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.ownership import preferred
from services.common.json_value import from_value, to_value
from tests.support.postgres import PG_ADMIN_DSN, require_postgres

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

LEASE = 2.0
VICTIM = "node1"


@asynccontextmanager
async def _cluster(
    db_url: str, workdir: Path, small: Path | None = None
) -> AsyncIterator[NemesisCluster]:
    cluster = NemesisCluster(db_url, workdir, LEASE, small)
    try:
        await cluster.start_all()
        yield cluster
    finally:
        await cluster.close()


@asynccontextmanager
async def _postgres_cluster(tmp_path: Path) -> AsyncIterator[NemesisCluster]:
    require_postgres()
    with fresh_postgres(PG_ADMIN_DSN) as url:
        async with _cluster(url, tmp_path) as cluster:
            yield cluster


def _prefix_of(node: str, tag: str) -> str:
    """A prefix `node` owns while all three nodes live (rendezvous hashing)."""
    return next(p for i in range(1000) if preferred(p := f"{tag}{i}", NODES) == node)


async def _wall_offset(cluster: NemesisCluster, within: float = 60.0) -> float:
    """The victim's wall clock minus ours (s), from the stamp of a Watch it starts as owner."""
    prefix = _prefix_of(VICTIM, "clk")
    deadline = time.monotonic() + within
    async with grpc.aio.insecure_channel(f"127.0.0.1:{cluster.ports[VICTIM]}") as channel:
        stub = cache_pb2_grpc.CacheServiceStub(channel)
        while True:
            try:
                await stub.Set(
                    cache_pb2.SetRequest(key=f"{prefix}:k", value=to_value(1)), timeout=5
                )
                call = stub.Watch(cache_pb2.WatchRequest(prefixes=[prefix]), timeout=5)
                async for event in call:
                    if event.HasField("started"):
                        return event.started.sent_at_unix_ms / 1000 - time.time()
                    break  # a reset: not the owner yet
            except grpc.aio.AioRpcError:
                pass  # restarting, or its lease is being handed back
            if time.monotonic() > deadline:
                raise TimeoutError(f"{VICTIM} started no Watch of {prefix} within {within}s")
            await asyncio.sleep(0.2)


def _fault(name: str, dialect: str) -> FaultClass:
    """The registered class `name` (loading the plugins that register it)."""
    return next(f for f in fault_classes(dialect) if f.name == name)


def _context(cluster: NemesisCluster, hold: float) -> FaultContext:
    return FaultContext(cluster, VICTIM, hold, random.Random(21))


def test_the_plugins_register_their_classes_where_they_apply() -> None:
    sqlite = {f.name for f in fault_classes("sqlite")}
    postgresql = {f.name for f in fault_classes("postgresql")}
    assert {"clock-skew", "clock-slow"} <= postgresql - sqlite
    assert "full-disk" not in postgresql
    assert ("full-disk" in sqlite) == (disk.mount_refused() is None)
    kernel_cut = netns.available() is None
    assert ("netns-partition" in sqlite, "netns-partition" in postgresql) == (kernel_cut,) * 2
    assert fault_classes("sqlite", ["netns-partition", "kill"]) == [
        f for f in fault_classes("sqlite") if f.name in ("kill", "netns-partition")
    ]
    with pytest.raises(ValueError, match="no-such-fault"):
        fault_classes("sqlite", ["no-such-fault"])


@pytest.mark.postgres
async def test_clock_skew_moves_the_victims_wall_clock_then_puts_it_back(tmp_path: Path) -> None:
    async with _postgres_cluster(tmp_path) as cluster:
        assert abs(await _wall_offset(cluster)) < 1.0
        async with _fault("clock-skew", "postgresql").inject(_context(cluster, 0.1)):
            offset = float((tmp_path / f"{VICTIM}-clock").read_text())
            assert 3.0 <= abs(offset) <= 8.0
            seen = await _wall_offset(cluster)
            assert abs(seen - offset) < 1.0, (
                f"skewed by {offset:+.1f}s, its Watch stamps {seen:+.1f}s"
            )
        assert abs(await _wall_offset(cluster)) < 1.0


@pytest.mark.postgres
async def test_clock_slow_runs_the_victims_clock_at_95_percent(tmp_path: Path) -> None:
    async with _postgres_cluster(tmp_path) as cluster:
        async with _fault("clock-slow", "postgresql").inject(_context(cluster, 0.1)):
            first, began = await _wall_offset(cluster), time.monotonic()
            await asyncio.sleep(6.0)  # the interval measured, not a wait for an event
            behind = first - await _wall_offset(cluster)
            # 5 % of the real time between the two stamps (each read's latency aside).
            expected = 0.05 * (time.monotonic() - began)
            assert 0.5 * expected < behind < 2.0 * expected, (behind, expected)
        assert abs(await _wall_offset(cluster)) < 1.0


async def _alarmed(cluster: NemesisCluster) -> list[str]:
    return [n for n in NODES if await asyncio.to_thread(disk.disk_alarm, cluster.nodes[n])]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root")
async def test_full_disk_refuses_writes_keeps_reads_then_recovers(tmp_path: Path) -> None:
    # One key per node, of a prefix it owns, written before each fill.
    keys = {n: f"{_prefix_of(n, 'dsk')}:k" for n in NODES}
    with disk.SmallDisk(tmp_path / "disk", disk.NEMESIS_DISK_BYTES) as small:
        url = f"sqlite:///{small.path / disk.SQLITE_FILE}"
        async with (
            _cluster(url, tmp_path, small.path) as cluster,
            grpc.aio.insecure_channel(f"127.0.0.1:{cluster.ports[VICTIM]}") as channel,
        ):
            stub = cache_pb2_grpc.CacheServiceStub(channel)
            # Twice: the second finds the free pages and the WAL the first left behind.
            for _ in range(2):
                await _full_disk_round(cluster, stub, small.path, keys)


async def _full_disk_round(
    cluster: NemesisCluster,
    stub: cache_pb2_grpc.CacheServiceAsyncStub,
    small: Path,
    keys: dict[str, str],
) -> None:
    for key in keys.values():
        await stub.Set(cache_pb2.SetRequest(key=key, value=to_value("before")), timeout=30)
    async with _fault("full-disk", "sqlite").inject(_context(cluster, 5.0)):
        assert (small / "filler").exists()
        alarmed = await _alarmed(cluster)
        assert alarmed, "no node raised cache_db_disk_full"
        request = cache_pb2.SetRequest(key=keys[alarmed[0]], value=to_value("during"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Set(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "not applied" in (refused.value.details() or "")
        for key in keys.values():
            reply = await stub.Get(cache_pb2.GetRequest(key=key), timeout=10)
            assert from_value(reply.value) == "before", key
    assert not (small / "filler").exists()
    deadline = time.monotonic() + 30
    while await _alarmed(cluster):
        assert time.monotonic() < deadline, "an alarm still up 30s after the heal"
        await asyncio.sleep(0.2)
    for key in keys.values():
        await stub.Set(cache_pb2.SetRequest(key=key, value=to_value("after")), timeout=10)
