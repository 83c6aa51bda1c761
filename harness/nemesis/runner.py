"""Rounds of random faults against three caches, each round's history checked.

A round: traffic, a fault on a random node (a random registered class), the
heal, recovery (every node sees all three members), a settle (every key read
back), and the checks (`checks.py`). `run` does rounds until its time is up, or
with `each_once` every fault class once (the bounded version `make test` runs);
`faults` restricts a run to the classes it names (`NEMESIS_FAULTS`). On SQLite,
as root, the file is on a small tmpfs of its own for the whole run, which the
full-disk fault fills. When a class of the run needs a node in a network
namespace (netns-partition), one node drawn at random lives there for the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from harness.nemesis import disk
from harness.nemesis.checks import EpochWatch, RoundResult, check_segment
from harness.nemesis.cluster import NODES, PG_ADMIN_DSN, NemesisCluster, fresh_postgres
from harness.nemesis.faults import FaultClass, FaultContext, fault_classes
from harness.nemesis.workload import Segment, Workload
from marketcache.v1 import cache_pb2, cache_pb2_grpc

log = logging.getLogger(__name__)

# A round whose slowest key went longer than this without a write logs what its writes
# were told (seconds; a normal failover takes about one lease).
SLOW_WINDOW = 3.0


@dataclass(frozen=True)
class Settings:
    """How a run goes."""

    lease_seconds: float = 2.0
    # Keys: PREFIXES prefixes x KEYS_PER_PREFIX keys, spread over the owners.
    prefixes: int = 8
    keys_per_prefix: int = 2
    # A fault lasts this many leases (drawn between the two).
    hold_leases: tuple[float, float] = (1.5, 2.5)
    # Traffic before each fault, and after recovery before the settle (seconds).
    lead_in: float = 1.0
    settle_after: float = 3.0


@contextmanager
def _database(dialect: str, workdir: Path, pg_admin_dsn: str) -> Iterator[tuple[str, Path | None]]:
    """The database's URL, and the small disk the SQLite file is on (when one can be mounted)."""
    if dialect == "sqlite":
        if disk.mount_refused() is not None:
            yield f"sqlite:///{workdir / 'nemesis.db'}", None
            return
        with disk.SmallDisk(workdir / "disk", disk.NEMESIS_DISK_BYTES) as small:
            yield f"sqlite:///{small.path / disk.SQLITE_FILE}", small.path
    else:
        with fresh_postgres(pg_admin_dsn) as url:
            yield url, None


async def _recovered(cluster: NemesisCluster, within: float = 90.0) -> None:
    """Until every node lists all three as live members (each asked directly)."""
    deadline = time.monotonic() + within
    while True:
        agreed = 0
        for name in NODES:
            async with grpc.aio.insecure_channel(cluster.direct(name)) as channel:
                stub = cache_pb2_grpc.CacheServiceStub(channel)
                try:
                    reply = await stub.ListOwners(cache_pb2.ListOwnersRequest(), timeout=3)
                except grpc.aio.AioRpcError:
                    break
                if {m.node_id for m in reply.members if m.alive} == set(NODES):
                    agreed += 1
        if agreed == len(NODES):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster did not recover within {within}s")
        await asyncio.sleep(0.2)


async def run(
    dialect: str,
    workdir: Path,
    *,
    seconds: float = 0.0,
    each_once: bool = False,
    seed: int | None = None,
    settings: Settings = Settings(),
    pg_admin_dsn: str = PG_ADMIN_DSN,
    faults: Collection[str] | None = None,
) -> list[RoundResult]:
    """Rounds against three caches on `dialect` (sqlite or postgresql); their results.
    With `faults`, only the classes of these names (none that applies: no round)."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    classes = fault_classes(dialect, faults)
    if not classes:
        log.info("nemesis on %s: none of the fault classes %s applies", dialect, faults)
        return []
    log.info("nemesis on %s, seed %d, %s", dialect, seed, ", ".join(f.name for f in classes))
    netns_node = rng.choice(NODES) if any(f.namespace for f in classes) else None
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    results: list[RoundResult] = []
    with _database(dialect, workdir, pg_admin_dsn) as (url, small_disk):
        cluster = NemesisCluster(
            url, workdir, settings.lease_seconds, small_disk, netns_node=netns_node
        )
        stop = asyncio.Event()
        epochs = EpochWatch(url)
        watcher: asyncio.Task[None] | None = None
        workload: Workload | None = None
        try:
            await cluster.start_all()
            await _recovered(cluster)
            watcher = asyncio.get_running_loop().create_task(epochs.run(stop))
            keys = [
                f"nem{p}:k{k}"
                for p in range(settings.prefixes)
                for k in range(settings.keys_per_prefix)
            ]
            workload = Workload(cluster, keys, rng)
            initial: dict[str, object] = dict.fromkeys(keys)
            ends = time.monotonic() + seconds
            plan = list(classes)
            rng.shuffle(plan)
            while plan if each_once else time.monotonic() < ends:
                fault = plan.pop() if each_once else rng.choice(classes)
                result, initial = await _round(
                    cluster, workload, fault, initial, epochs, rng, settings
                )
                results.append(result)
                log.info(
                    "round %d %s on %s: %d ops, %d acked, %d refused, lost %d, stale %d, "
                    "window %.1fs (%s), %d keys unrecovered%s",
                    len(results),
                    fault.name,
                    result.victim,
                    result.operations,
                    result.acknowledged,
                    result.refused,
                    result.lost,
                    result.stale,
                    result.window,
                    result.slowest_key,
                    result.unrecovered,
                    "; " + "; ".join(result.problems[:3]) if result.problems else "",
                )
                if result.lost or result.stale or result.problems:
                    history = workdir / f"round-{len(results)}-history.jsonl"
                    await asyncio.to_thread(_write_history, history, workload.segment)
                    log.info("round %d: its history is in %s", len(results), history)
                if result.window > SLOW_WINDOW:
                    log.info(
                        "round %d: %s's last failed writes: %s",
                        len(results),
                        result.slowest_key,
                        " | ".join(workload.segment.errors.get(result.slowest_key, [])),
                    )
        finally:
            stop.set()
            if watcher is not None:
                await watcher
            if workload is not None:
                try:
                    await asyncio.wait_for(workload.close(), 60)
                except TimeoutError:
                    # The rounds are judged already: a client that does not close in
                    # time is logged, not allowed to lose the run's results.
                    log.error("the workload's clients did not close within 60s")
            await cluster.close()
    return results


async def _round(  # noqa: PLR0917 (the round's collaborators, each once)
    cluster: NemesisCluster,
    workload: Workload,
    fault: FaultClass,
    initial: dict[str, object],
    epochs: EpochWatch,
    rng: random.Random,
    settings: Settings,
) -> tuple[RoundResult, dict[str, object]]:
    lease = settings.lease_seconds
    victim = rng.choice(fault.victims(cluster))
    result = RoundResult(fault.name, cluster.dialect, victim)
    backwards = len(epochs.backwards)
    workload.segment = segment = Segment()
    started_at = time.monotonic()
    workload.start()
    try:
        await asyncio.sleep(settings.lead_in)
        ctx = FaultContext(cluster, victim, rng.uniform(*settings.hold_leases) * lease, rng)
        fault_at = time.monotonic()
        async with fault.inject(ctx):
            pass
        await _recovered(cluster)
        # Long enough for a connection stuck in the cut to be ended (2 leases from
        # its checkout) and for every key to be written again.
        await asyncio.sleep(settings.settle_after)
    finally:
        await workload.stop()
    ended_at = time.monotonic()
    result.problems += ctx.problems
    for name, proc in cluster.nodes.items():
        if proc.popen.poll() is not None:
            result.problems.append(f"{name} exited ({proc.popen.returncode}) during the round")
            await cluster.start(name)
    settled = {key: await workload.read_everywhere(key) for key in workload.keys}
    check_segment(
        segment,
        initial=initial,
        settled=settled,
        started_at=started_at,
        fault_at=fault_at,
        ended_at=ended_at,
        result=result,
    )
    result.problems += epochs.backwards[backwards:]
    if not epochs.seen:
        result.problems.append("the lease table was never read: epochs went unchecked")
    return result, settled


def _write_history(path: Path, segment: Segment) -> None:
    """A violating round's history, one operation per line, for a person to read."""
    lines = [
        json.dumps({"key": key, **dataclasses.asdict(op)})
        for key, ops in segment.ops.items()
        for op in ops
    ]
    lines += [json.dumps({"near": True, **dataclasses.asdict(r)}) for r in segment.near_reads]
    path.write_text("\n".join(lines) + "\n")
