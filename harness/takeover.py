"""`python -m harness.takeover`: kill -9 of an owner, over many runs: how long until every
prefix it held is served again, through every survivor.

The promise (docs/ownership.md): a dead owner's every prefix has a live owner within
the lease plus 2 s, whoever is asked. One run: three caches (node0..node2) on a fresh
database with a 2 s lease, one key on each of 48 random prefixes written through
random nodes (48; --prefixes), a random pause (0 to 3 s: handovers between newly joined members may
still be under way), kill -9 of a random node, then an MGet of each of its prefixes
through each survivor every 0.1 s until all are served. Two ways a death is seen:
`exit-detected` (same host: the dead pid is seen gone) and `lease-expiry`
(CACHE_DETECT_LOCAL_EXITS=false: as across hosts, the lease must run out).

    python -m harness.takeover [--runs 20] [--databases sqlite,postgresql]
        [--modes exit-detected,lease-expiry] [--json FILE] [--reliability RELIABILITY.md]

Exits 1 when a run missed the bound, naming the prefix, the survivor and its answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

from harness import page_sections
from harness.nemesis.cluster import NODES, PG_ADMIN_DSN, fresh_postgres
from harness.page_sections import put_section, run_stamp
from harness.process import ServiceProcess
from harness.readiness import wait_ready
from harness.services import start_service
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import from_value, to_value

log = logging.getLogger(__name__)

LEASE_SECONDS = 2.0
# The promise: every prefix served again within the lease plus this.
MARGIN_SECONDS = 2.0
PREFIXES = 48
# How long a run keeps asking before it records the prefix as never served.
GIVE_UP_SECONDS = 30.0
MODES = {"exit-detected": "true", "lease-expiry": "false"}
BEGIN = "<!-- takeover:begin (written by python -m harness.takeover --reliability) -->"
END = "<!-- takeover:end -->"


@dataclass
class Run:
    """One kill and what followed."""

    database: str
    mode: str
    victim: str
    # Seconds from the writes to the kill.
    paused: float
    prefixes: int = 0
    # Seconds from the kill until every (survivor, prefix) was served; None: never.
    served_after: float | None = None
    # (survivor, prefix) -> the last error it answered, for those never served in time.
    late: dict[str, str] = field(default_factory=dict)

    @property
    def bound(self) -> float:
        return LEASE_SECONDS + MARGIN_SECONDS

    @property
    def missed(self) -> bool:
        return self.served_after is None or self.served_after > self.bound


@contextmanager
def _database(dialect: str, workdir: Path, pg_admin_dsn: str) -> Iterator[str]:
    if dialect == "sqlite":
        yield f"sqlite:///{workdir / 'cache.db'}"
    else:
        with fresh_postgres(pg_admin_dsn) as url:
            yield url


class _Cluster:
    def __init__(self, db_url: str, workdir: Path, detect: str) -> None:
        self.procs: dict[str, ServiceProcess] = {}
        self._env = {
            "CACHE_LISTEN": "127.0.0.1:0",
            "CACHE_METRICS_LISTEN": "127.0.0.1:0",
            "CACHE_DB_URL": db_url,
            "CACHE_LEASE_SECONDS": str(LEASE_SECONDS),
            "CACHE_DETECT_LOCAL_EXITS": detect,
        }
        self._workdir = workdir
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def start(self) -> None:
        for node in NODES:
            env = {**self._env, "CACHE_NODE_ID": node}
            self.procs[node] = start_service("cache", env, self._workdir, wait=False, label=node)
        for proc in self.procs.values():
            await asyncio.to_thread(wait_ready, proc, 60.0)

    def stub(self, node: str) -> cache_pb2_grpc.CacheServiceAsyncStub:
        if node not in self._channels:
            self._channels[node] = grpc.aio.insecure_channel(self.procs[node].grpc_address)
        return cache_pb2_grpc.CacheServiceStub(self._channels[node])

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(None)
        for proc in self.procs.values():
            await asyncio.to_thread(proc.stop)


async def _until(what: str, within: float, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {within}s")
        await asyncio.sleep(0.1)


async def _members_agree(cluster: _Cluster) -> bool:
    for node in NODES:
        reply = await cluster.stub(node).ListOwners(cache_pb2.ListOwnersRequest(), timeout=5)
        if {m.node_id for m in reply.members if m.alive} != set(NODES):
            return False
    return True


async def _write(cluster: _Cluster, prefix: str, rng: random.Random) -> None:
    request = cache_pb2.SetRequest(key=f"{prefix}:k", value=to_value(prefix), ttl_seconds=600)
    deadline = time.monotonic() + 30.0
    while True:
        try:
            await cluster.stub(rng.choice(NODES)).Set(request, timeout=5)
            return
        except grpc.aio.AioRpcError:
            # A prefix may be moving between members that just joined: try again.
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _held_by(cluster: _Cluster, victim: str, prefixes: Sequence[str]) -> set[str]:
    """What the victim holds, by its own account and by every node's."""
    held: set[str] = set()
    for node in NODES:
        reply = await cluster.stub(node).ListOwners(cache_pb2.ListOwnersRequest(), timeout=5)
        held |= {o.prefix for o in reply.owners if o.node_id == victim and o.epoch > 0}
    return held & set(prefixes)


async def one_run(
    dialect: str,
    mode: str,
    workdir: Path,
    rng: random.Random,
    pg_admin_dsn: str,
    *,
    count: int = PREFIXES,
) -> Run:
    """One cluster, one kill; the run's record."""
    victim = rng.choice(NODES)
    paused = rng.uniform(0.0, 3.0)
    run = Run(dialect, mode, victim, round(paused, 2))
    with _database(dialect, workdir, pg_admin_dsn) as url:
        cluster = _Cluster(url, workdir, MODES[mode])
        try:
            await cluster.start()
            await _until("members never agreed", 60.0, lambda: _members_agree(cluster))
            prefixes = [f"o{rng.getrandbits(32):08x}" for _ in range(count)]
            await asyncio.gather(*(_write(cluster, prefix, rng) for prefix in prefixes))
            await asyncio.sleep(paused)
            victims = await _held_by(cluster, victim, prefixes)
            run.prefixes = len(victims)
            await asyncio.to_thread(cluster.procs[victim].kill9)
            killed_at = time.monotonic()
            survivors = [n for n in NODES if n != victim]
            run.served_after, run.late = await _served_again(cluster, survivors, victims, killed_at)
        finally:
            await cluster.close()
    return run


async def _served_again(
    cluster: _Cluster, survivors: list[str], victims: set[str], killed_at: float
) -> tuple[float | None, dict[str, str]]:
    unserved = {(node, prefix) for node in survivors for prefix in victims}
    last: dict[tuple[str, str], str] = {}
    # The last pair served, and the last error it answered before.
    slowest: list[str] = []

    async def ask(node: str, prefix: str) -> None:
        try:
            reply = await cluster.stub(node).MGet(
                cache_pb2.MGetRequest(keys=[f"{prefix}:k"]), timeout=1
            )
        except grpc.aio.AioRpcError as exc:
            last[node, prefix] = f"{time.monotonic() - killed_at:.1f}s: {exc.details()}"
            return
        (result,) = reply.results
        if result.found and from_value(result.value) == prefix:
            unserved.discard((node, prefix))
            slowest[:] = [node, prefix, last.get((node, prefix), "")]
        else:
            last[node, prefix] = "answered without the acknowledged value"

    while unserved and time.monotonic() - killed_at < GIVE_UP_SECONDS:
        await asyncio.gather(*(ask(node, prefix) for node, prefix in sorted(unserved)))
        if unserved:
            await asyncio.sleep(0.1)
    took = time.monotonic() - killed_at
    late = {f"{node} {prefix}": last.get((node, prefix), "") for node, prefix in sorted(unserved)}
    if not unserved and slowest:
        log.info("the last served: %s %s, after: %s", *slowest)
    return (None if unserved else round(took, 3)), late


def render(runs: Sequence[Run], seconds: float, prefixes: int = PREFIXES) -> str:
    """The RELIABILITY.md section, markers included."""
    lines = [
        BEGIN,
        "## Takeover after kill -9, over many runs",
        "",
        f"`make takeover` run: {run_stamp()}, {seconds / 60:.1f} "
        f"minutes, {len(runs)} runs. Each run: three caches on a fresh database, lease "
        f"{LEASE_SECONDS:g} s, one key on each of {prefixes} random prefixes written at once "
        "through random nodes, a random pause of 0-3 s, kill -9 of a random node, then each of its "
        "prefixes asked (MGet) through each survivor every 0.1 s. The time is from the kill "
        "until every prefix was served with its acknowledged value through every survivor. "
        f"The promise is the lease + {MARGIN_SECONDS:g} s = "
        f"{LEASE_SECONDS + MARGIN_SECONDS:g} s.",
        "",
        "| database | death seen by | runs | prefixes taken over | served again "
        "(max / p50 / p90, s) | runs past the promise |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.database, r.mode), []).append(r)
    for (database, mode), group in sorted(groups.items()):
        never = float("inf")
        times = sorted(never if r.served_after is None else r.served_after for r in group)
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        lines.append(
            f"| {database} | {mode} | {len(group)} | {sum(r.prefixes for r in group)} "
            f"| {max(times):.2f} / {statistics.median(times):.2f} / {p90:.2f} "
            f"| {sum(r.missed for r in group)} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_section(
    path: Path, runs: Sequence[Run], seconds: float, prefixes: int = PREFIXES
) -> None:
    """Put the section into `path`, replacing the one there (or appended)."""
    put_section(path, BEGIN, END, render(runs, seconds, prefixes))


def kept_section(path: Path) -> str:
    """The section as it stands in `path` ("" when none): other renderers keep it."""
    return page_sections.kept_section(path, BEGIN, END)


async def run_all(
    runs: int,
    databases: Sequence[str],
    modes: Sequence[str],
    seed: int,
    pg_admin_dsn: str,
    *,
    count: int = PREFIXES,
) -> list[Run]:
    rng = random.Random(seed)
    results: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="takeover-") as tmp:
        for index in range(runs):
            for dialect in databases:
                for mode in modes:
                    workdir = Path(tmp) / f"{index}-{dialect}-{mode}"
                    run = await one_run(dialect, mode, workdir, rng, pg_admin_dsn, count=count)
                    results.append(run)
                    log.info(
                        "%s %s: %s killed %.2fs after the writes; %d prefixes served again "
                        "through every survivor %s%s",
                        dialect,
                        mode,
                        run.victim,
                        run.paused,
                        run.prefixes,
                        "never" if run.served_after is None else f"in {run.served_after:.2f}s",
                        f"; PAST THE PROMISE: {run.late}" if run.missed else "",
                    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per database and mode")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--prefixes", type=int, default=PREFIXES, help="prefixes written")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--pg-admin-dsn", default=PG_ADMIN_DSN)
    parser.add_argument("--json", type=Path, help="write every run's record here")
    parser.add_argument("--reliability", type=Path, help="write the table into this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown --modes {unknown}: choose from {sorted(MODES)}")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    log.info("takeover runs, seed %d", seed)
    databases = [d for d in args.databases.split(",") if d]
    began = time.monotonic()
    results = asyncio.run(
        run_all(args.runs, databases, modes, seed, args.pg_admin_dsn, count=args.prefixes)
    )
    took = time.monotonic() - began
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        records = [{**asdict(r), "missed": r.missed} for r in results]
        args.json.write_text(json.dumps(records, indent=1))
    if args.reliability:
        write_section(args.reliability, results, took, args.prefixes)
    missed = [r for r in results if r.missed]
    for r in missed:
        print(f"PAST THE PROMISE: {r.database} {r.mode} {r.victim}: {r.late}", file=sys.stderr)
    print(f"{len(results)} runs in {took:.0f}s, {len(missed)} past the promise")
    return 1 if missed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
