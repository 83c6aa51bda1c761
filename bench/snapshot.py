"""REST /api/v1/sectors/snapshot warm against cold, the upstream delaying every call 100 ms."""

from __future__ import annotations

import time

import aiohttp

from bench.market_stack import UPSTREAM_DELAY_MS, MarketStack
from bench.results import (
    SNAP_COLD_P50,
    SNAP_SPEEDUP,
    SNAP_WARM_P50,
    SNAP_WARM_P99,
    Cell,
    Results,
)
from bench.servers import BenchError
from bench.sizes import Sizes
from bench.stats import median, percentile

SNAPSHOT = "/api/v1/sectors/snapshot"
# What a snapshot is built from, besides the sector namespaces ClearAllCaches empties.
SOURCE_PREFIXES = ("stock", "history")


async def make_cold(stack: MarketStack, session: aiohttp.ClientSession) -> None:
    """Empty every cache the snapshot could be answered from (admin operations)."""
    url = f"{stack.gateway_url}/api/v1/sectors/cache"
    async with session.delete(url, headers=stack.admin_headers) as reply:
        if reply.status != 200:
            raise BenchError(f"DELETE {url}: {reply.status} {await reply.text()}")
    for prefix in SOURCE_PREFIXES:
        await stack.clear_prefix(session, prefix)


async def timed_snapshot(stack: MarketStack, session: aiohttp.ClientSession) -> float:
    """One GET of the snapshot; milliseconds until the whole body arrived."""
    start = time.perf_counter()
    async with session.get(stack.gateway_url + SNAPSHOT) as reply:
        body = await reply.read()
        elapsed = (time.perf_counter() - start) * 1000.0
        if reply.status != 200:
            raise BenchError(f"GET {SNAPSHOT}: {reply.status} {body[:500]!r}")
    return elapsed


async def measure(
    results: Results, sizes: Sizes, stack: MarketStack, session: aiohttp.ClientSession
) -> None:
    """Cold samples (caches emptied before each), then repeated warm calls."""
    cold = []
    await stack.reset_upstream(session)
    for _ in range(sizes.snapshot_cold):
        await make_cold(stack, session)
        cold.append(await timed_snapshot(stack, session))
    cold_calls = await stack.upstream_calls(session)

    await timed_snapshot(stack, session)  # the cold sample above warmed it; make sure
    await stack.reset_upstream(session)
    per_rep = max(5, sizes.snapshot_warm // sizes.reps)
    warm_p50: list[float] = []
    warm_p99: list[float] = []
    for _ in range(sizes.reps):
        latencies = [await timed_snapshot(stack, session) for _ in range(per_rep)]
        warm_p50.append(percentile(latencies, 50))
        warm_p99.append(percentile(latencies, 99))
    warm_calls = await stack.upstream_calls(session)

    results.put_system(
        SNAP_COLD_P50, Cell.of(cold, f"{cold_calls / len(cold):.0f} upstream calls each")
    )
    results.put_system(SNAP_WARM_P50, Cell.of(warm_p50, f"{warm_calls} upstream calls in all"))
    results.put_system(SNAP_WARM_P99, Cell.of(warm_p99))
    speedup = median(cold) / median(warm_p50)
    results.put_system(SNAP_SPEEDUP, Cell(value=speedup, note="median cold / median warm p50"))
    results.notes[SNAP_COLD_P50.label] = (
        f"Every upstream call (fake FMP) is delayed {UPSTREAM_DELAY_MS} ms. Cold: before each of "
        f"{len(cold)} samples, DELETE /api/v1/sectors/cache and Clear of the "
        f"{', '.join(SOURCE_PREFIXES)} prefixes (admin). Warm: {sizes.reps} repetitions "
        f"of {per_rep} sequential calls after a priming call."
    )
