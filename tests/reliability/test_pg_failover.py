"""PostgreSQL fails over under 64-way writes through three caches on a multi-host URL.

With a synchronous standby nothing acknowledged is lost, epochs never go back and
every key's history is linearizable. The negative control runs the same drive
against an asynchronous standby that stopped receiving WAL: the same checks must
see acknowledged writes lost, or they would prove nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.client import CacheClient
from tests.ownership.cluster import Cluster
from tests.reliability.failover_drive import (
    KEYS,
    WORKERS,
    FailoverHistory,
    backwards,
    final_reads,
    watch_epochs,
    worker,
)
from tests.reliability.records import nothing_lost, record
from tests.support.pg_cluster import PgNode, PgSet, make_synchronous, multi_host_url, pg_servers
from tests.support.polling import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.chaos, pytest.mark.e2e]

NODES = ("fo-1", "fo-2", "fo-3")


@pytest.fixture
def servers() -> Iterator[PgSet]:
    with pg_servers() as made:
        yield made


class Drive:
    """The 64 writers and the epoch watcher, started and stopped together."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.history = FailoverHistory()
        self.stop = asyncio.Event()
        self.clients = [CacheClient(cluster.nodes[n].grpc_address, timeout=2.0) for n in NODES]
        self.tasks = [
            asyncio.create_task(worker(i, self.clients[i % 3], self.history, self.stop))
            for i in range(WORKERS)
        ]
        self.tasks.append(asyncio.create_task(watch_epochs(cluster, self.history, self.stop)))

    async def acked(self, more: int, within: float) -> None:
        target = self.history.acknowledged + more
        await eventually(
            lambda: self.history.acknowledged >= target,
            within,
            f"fewer than {more} more acknowledged writes ({dict(self.history.outcomes)})",
        )

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.clients:
            await client.close()


async def _start_caches(url: str, workdir: Path) -> Cluster:
    cluster = Cluster(url, workdir)
    await cluster.start(*NODES)
    await cluster.wait_members(NODES)
    return cluster


def _sync_standby_streaming(primary: PgNode) -> bool:
    rows = primary.sql("SELECT sync_state FROM pg_stat_replication")
    return any(state == "sync" for (state,) in rows)


def _tracebacks(cluster: Cluster) -> int:
    return sum(proc.log().count("Traceback") for proc in cluster.nodes.values())


async def test_failover_to_a_synchronous_standby_keeps_every_acknowledged_write(
    servers: PgSet, tmp_path: Path
) -> None:
    primary = await asyncio.to_thread(servers.primary)
    standby = await asyncio.to_thread(servers.standby, primary)
    await asyncio.to_thread(make_synchronous, primary, "standby")
    await eventually(lambda: _sync_standby_streaming(primary), 30, "standby never in sync")

    cluster = await _start_caches(multi_host_url(primary, standby), tmp_path)
    drive: Drive | None = None
    try:
        assert all(cluster.metric(n, "cache_db_synchronous_replication") == 1.0 for n in NODES), (
            "a cache did not see the synchronous standby"
        )
        drive = Drive(cluster)
        await drive.acked(400, 120)
        before_kill = drive.history.acknowledged

        await asyncio.to_thread(primary.stop, "immediate")
        killed = time.monotonic()
        await asyncio.to_thread(standby.promote)
        promoted = time.monotonic()
        await eventually(
            lambda: drive is not None and drive.history.first_ack_after(promoted) is not None,
            120,
            "no write was acknowledged after the promotion",
        )
        await drive.acked(400, 120)
        await drive.close()
        history = drive.history
        final = await final_reads(cluster, history)
        lost = {node: history.lost(values) for node, values in final.items()}
        verdicts = history.verdicts()
        bad = {k: v.stuck for k, v in verdicts.items() if not v.ok}
        went_back = backwards(history)
        first = history.first_ack_after(killed)
        assert first is not None
        tracebacks = _tracebacks(cluster)
        record(
            "PostgreSQL failover to a synchronous standby (3 caches)",
            tried=(
                f"{WORKERS}-way Set/MSet/Get of {len(KEYS)} keys through 3 caches on a multi-host "
                "URL; primary stopped with pg_ctl -m immediate mid-drive; standby "
                "(synchronous_standby_names) promoted; every key read through every cache, "
                "per-key histories checked for linearizability, epochs watched on every node"
            ),
            cases=(
                f"{history.acknowledged} acknowledged and {history.outcomes['write unknown']} "
                f"unknown writes ({before_kill} acknowledged before the kill), "
                f"{history.outcomes['read ok']} reads"
            ),
            lost=nothing_lost(sum(len(v) for v in lost.values())),
            figures={
                "kill to first acknowledged write (s)": round(first - killed, 2),
                "promotion (s)": round(promoted - killed, 2),
                "outcomes": dict(history.outcomes),
                "keys not linearizable": len(bad),
                "epochs that went backwards": went_back or "none",
                "tracebacks in the cache logs": tracebacks,
            },
            passed=not bad and not went_back and not any(lost.values()),
        )
        print(f"kill -> first ack {first - killed:.2f}s; {dict(history.outcomes)}")
        assert not any(lost.values()), f"acknowledged writes lost: {lost}"
        assert not bad, f"not linearizable: {list(bad)[:5]}"
        assert not went_back, went_back
        assert history.outcomes["write unknown"] > 0, "the kill hit no write in flight"
        assert tracebacks == 0, "reconnect tracebacks in the logs"
    finally:
        if drive is not None:
            await drive.close()
        await cluster.close()


async def test_failover_to_a_lagging_asynchronous_standby_is_seen_losing_writes(
    servers: PgSet, tmp_path: Path
) -> None:
    primary = await asyncio.to_thread(servers.primary)
    standby = await asyncio.to_thread(servers.standby, primary)  # asynchronous: the default
    cluster = await _start_caches(multi_host_url(primary, standby), tmp_path)
    drive: Drive | None = None
    try:
        assert cluster.metric(NODES[0], "cache_db_synchronous_replication") == 0.0
        assert "does not replicate synchronously" in cluster.nodes[NODES[0]].log()
        drive = Drive(cluster)
        await drive.acked(200, 120)
        # The standby stops receiving WAL: whatever the primary acknowledges now is
        # on the primary alone, as with a lagging asynchronous replica.
        await asyncio.to_thread(standby.stop, "fast")
        await drive.acked(300, 120)
        await asyncio.to_thread(primary.stop, "immediate")
        killed = time.monotonic()
        await asyncio.to_thread(standby.start)
        await asyncio.to_thread(standby.promote)
        await eventually(
            lambda: drive is not None and drive.history.first_ack_after(killed) is not None,
            120,
            "no write was acknowledged after the promotion",
        )
        await drive.close()
        history = drive.history
        final = await final_reads(cluster, history)
        lost = {node: history.lost(values) for node, values in final.items()}
        bad = [k for k, v in history.verdicts().items() if not v.ok]
        record(
            "PostgreSQL failover to a lagging asynchronous standby (negative control)",
            tried=(
                "the drive of the synchronous failover test against an asynchronous standby "
                "stopped mid-drive (no WAL received), then the primary killed and the "
                "standby promoted: the checks must see the loss"
            ),
            cases=f"{history.acknowledged} acknowledged writes; {len(KEYS)} keys",
            lost=(
                f"{len(lost[NODES[0]])} keys lost an acknowledged write (expected: the "
                f"control), {len(bad)} keys not linearizable"
            ),
            figures={"outcomes": dict(history.outcomes)},
            passed=bool(lost[NODES[0]]) and bool(bad),
        )
        assert lost[NODES[0]], "the checks saw no loss: they could not see one either"
        assert bad, "the linearizability checker accepted a history with lost writes"
    finally:
        if drive is not None:
            await drive.close()
        await cluster.close()
