"""Soak: mixed REST and gRPC load on the four real processes for SOAK_SECONDS (60 in CI).

Zero errors; after warm-up each process's RSS grows less than 10%; file
descriptors and threads, counted at the same quiet point (load paused, client
connections kept) after warm-up and at the end, do not grow. `make soak` runs
this for 600 seconds.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.gateway.stack import TOKEN, gateway_stack
from tests.reliability.records import nothing_lost, record
from tests.reliability.soak_load import Load
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
WARMUP_SECONDS = max(10.0, 0.2 * SOAK_SECONDS)
WORKERS = 8
RSS_GROWTH_LIMIT = 0.10
# Room for a lazily started pool thread or socket; a leak grows with the calls, by thousands.
FD_SLACK, THREAD_SLACK = 8, 4


@dataclass(frozen=True)
class Sample:
    """One process's resources at one moment."""

    rss: int
    fds: int
    threads: int


def sample(pid: int) -> Sample:
    proc = psutil.Process(pid)
    return Sample(proc.memory_info().rss, proc.num_fds(), proc.num_threads())


async def quiet_sample(load: Load, procs: dict[str, ServiceProcess]) -> dict[str, Sample]:
    """Pause the load, let every call finish, sample every process."""
    load.running.clear()
    await load.drained()
    return {name: sample(proc.pid) for name, proc in procs.items()}


async def test_soak(tmp_path: Path) -> None:
    with gateway_stack(tmp_path, market_data=True, sector=True) as stack:
        procs = {"gateway": stack.gateway, **stack.backends}
        async with Load(
            gateway_url=stack.url,
            cache_addr=stack.backends["cache"].grpc_address,
            market_addr=stack.backends["market_data"].grpc_address,
            sector_addr=stack.backends["sector"].grpc_address,
            token=TOKEN,
        ) as load:
            workers = asyncio.create_task(load.run(WORKERS))
            started = time.monotonic()
            load.running.set()
            await asyncio.sleep(WARMUP_SECONDS)  # the load runs meanwhile: this is its length
            warm = await quiet_sample(load, procs)
            calls_at_warm = sum(load.stats.calls.values())
            load.running.set()
            await asyncio.sleep(max(SOAK_SECONDS - WARMUP_SECONDS, 1.0))
            end = await quiet_sample(load, procs)
            elapsed = time.monotonic() - started
            load.stop = True
            load.running.set()
            await workers
        alive = {name: proc.popen.poll() is None for name, proc in procs.items()}
    growth = {name: (end[name].rss - warm[name].rss) / warm[name].rss for name in procs}
    leaks = [
        f"{name}: fds {warm[name].fds} -> {end[name].fds}"
        for name in procs
        if end[name].fds > warm[name].fds + FD_SLACK
    ] + [
        f"{name}: threads {warm[name].threads} -> {end[name].threads}"
        for name in procs
        if end[name].threads > warm[name].threads + THREAD_SLACK
    ]
    too_big = [f"{name}: RSS +{g:.1%}" for name, g in growth.items() if g >= RSS_GROWTH_LIMIT]
    total = sum(load.stats.calls.values())
    record(
        "soak (gateway, sector, market_data, cache)",
        tried=(
            f"{WORKERS} workers of mixed REST (snapshot, sectors, quotes, history, news, key "
            "put/get, mget, health) and gRPC (cache set/get/mget/mset/delete, quotes, sectors) "
            f"for {SOAK_SECONDS:.0f}s; RSS, fds and threads of each process after "
            f"{WARMUP_SECONDS:.0f}s of warm-up and at the end"
        ),
        cases=f"{total} calls in {elapsed:.0f}s ({total / elapsed:.0f}/s)",
        lost=nothing_lost(
            len(load.stats.errors) + len(leaks) + len(too_big),
            "errors, leaks or RSS growth over 10%",
        ),
        figures={
            "calls by kind": dict(load.stats.calls.most_common()),
            "calls after warm-up": total - calls_at_warm,
            "errors": load.stats.errors[:20],
            "RSS MiB warm -> end (growth)": {
                name: f"{warm[name].rss / 2**20:.1f} -> {end[name].rss / 2**20:.1f} "
                f"({growth[name]:+.1%})"
                for name in procs
            },
            "fds warm -> end": {name: f"{warm[name].fds} -> {end[name].fds}" for name in procs},
            "threads warm -> end": {
                name: f"{warm[name].threads} -> {end[name].threads}" for name in procs
            },
            "processes alive": alive,
        },
        passed=not load.stats.errors and not leaks and not too_big and all(alive.values()),
    )
    assert not load.stats.errors, "\n".join(load.stats.errors[:30])
    assert all(alive.values()), alive
    assert not leaks, leaks
    assert not too_big, too_big
    assert total - calls_at_warm > 100, load.stats.calls
