"""The near cache: hot Get against Redis, the plain client and a dict; invalidation
latency (writer's ack to the reader no longer serving the old value), idle and with
~1,000 writes/s on other keys of the prefix; the REST sector snapshot, warm, with the
near cache on in sector and market_data.

    python -m bench.near_cache [smoke|quick|full]   # prints the figures
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import aiohttp

from bench import market_stack, snapshot
from bench.results import (
    DICT_GET,
    INVAL_IDLE_P50,
    INVAL_IDLE_P99,
    INVAL_LOAD_P50,
    INVAL_LOAD_P99,
    NEAR_GET,
    NEAR_ROWS,
    PLAIN_GET,
    REDIS_ASYNC_GET,
    REDIS_SYNC_GET,
    SNAP_NEAR_P50,
    Cell,
    Results,
)
from bench.servers import cache_env, shared_redis
from bench.stats import percentile
from harness.services import start_service
from services.client import CacheClient
from services.client.near.near_cache import NearCache

NEAR_ENV = {"CACHE_NEAR_CACHE_BYTES": "67108864", "CACHE_NEAR_MAX_STALENESS_MS": "1000"}
ROWS = NEAR_ROWS
# Calls per hot-Get sample and invalidations timed, per mode.
COUNTS = {"smoke": (200, 10), "quick": (5_000, 200), "full": (20_000, 1_000)}
VALUE = {"symbol": "AAPL", "price": 189.25, "volume": 51234567, "ts": "2026-11-24T15:59:00Z"}


async def _p50_us(call: Callable[[], Awaitable[object]], n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return percentile(samples, 50)


def _sync_p50_us(call: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return percentile(samples, 50)


async def _served(near: NearCache, key: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while near.lookup(key) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key} never served from the near cache")
        await asyncio.sleep(0.005)


async def hot_get(results: Results, mode: str, address: str, workdir: Path) -> None:
    """Hot Get p50 through each path, one key, sequential calls."""
    n = COUNTS[mode][0]
    near = CacheClient(address, timeout=5, near_cache_bytes=1 << 24)
    plain = CacheClient(address, timeout=5)
    try:
        await plain.set("stock:HOT", VALUE)
        assert near.near is not None
        while True:  # until the stream started and the reply was installed
            await near.get("stock:HOT")
            if near.near.lookup("stock:HOT") is not None:
                break
            await asyncio.sleep(0.01)
        results.put_system(NEAR_GET, Cell(value=await _p50_us(lambda: near.get("stock:HOT"), n)))
        results.put_system(PLAIN_GET, Cell(value=await _p50_us(lambda: plain.get("stock:HOT"), n)))
    finally:
        await near.close()
        await plain.close()
    table = {"stock:HOT": VALUE}
    results.put_system(DICT_GET, Cell(value=_sync_p50_us(lambda: table.get("stock:HOT"), n)))
    redis_server = shared_redis(workdir)
    if redis_server is None:
        for row in (REDIS_SYNC_GET, REDIS_ASYNC_GET):
            results.put_system(row, Cell.absent("no redis-server"))
        return
    try:
        sync = redis_server.sync_client()
        sync.set("bench:near:HOT", b"x" * 120)
        results.put_system(
            REDIS_SYNC_GET, Cell(value=_sync_p50_us(lambda: sync.get("bench:near:HOT"), n))
        )
        sync.close()
        aclient = redis_server.async_client()
        results.put_system(
            REDIS_ASYNC_GET,
            Cell(value=await _p50_us(lambda: aclient.get("bench:near:HOT"), n)),
        )
        await aclient.aclose()
    finally:
        redis_server.stop()


async def invalidation(results: Results, mode: str, address: str, *, load: bool) -> None:
    """Writer's ack to the reader's near cache no longer serving the old value."""
    n = COUNTS[mode][1]
    reader = CacheClient(address, timeout=5, near_cache_bytes=1 << 24)
    writer = CacheClient(address, timeout=5)
    noise = CacheClient(address, timeout=5)
    stop = asyncio.Event()

    async def background() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.perf_counter()
            await noise.set(f"inval:other{i % 100}", i)
            await asyncio.sleep(max(0.0, 0.001 - (time.perf_counter() - started)))

    task = asyncio.create_task(background()) if load else None
    lags = []
    try:
        assert reader.near is not None
        for i in range(n):
            await writer.set("inval:key", i)
            await _served_value(reader, "inval:key", i)
            await writer.set("inval:key", -i - 1)
            acked = time.perf_counter()
            # Polled as fast as the loop turns: the stream is read on this same loop.
            while reader.near.lookup("inval:key") is not None:  # noqa: ASYNC110
                await asyncio.sleep(0)
            lags.append((time.perf_counter() - acked) * 1000)
    finally:
        stop.set()
        if task is not None:
            await task
        for c in (reader, writer, noise):
            await c.close()
    p50_row, p99_row = (
        (INVAL_LOAD_P50, INVAL_LOAD_P99) if load else (INVAL_IDLE_P50, INVAL_IDLE_P99)
    )
    note = f"{n} invalidations, reader and writer in one process, separate channels"
    results.put_system(p50_row, Cell(value=percentile(lags, 50), note=note))
    results.put_system(p99_row, Cell(value=percentile(lags, 99)))


async def _served_value(client: CacheClient, key: str, value: int) -> None:
    near = client.near
    assert near is not None
    deadline = time.monotonic() + 10
    while True:
        got = await client.get(key)
        held = near.lookup(key)
        if got == value and held is not None and held[0] == value:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key}={value} never held by the near cache")
        await asyncio.sleep(0.002)


async def near_snapshot(results: Results, reps: int, workdir: Path) -> None:
    """The REST sector snapshot, warm, with the near cache on in sector and market_data."""
    stack = market_stack.start(workdir / "near-stack", extra_env=NEAR_ENV)
    try:
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await market_stack.wait_ready(stack, session, within=60.0)
            for _ in range(20):  # warm: the first reads install, the next are served near
                await snapshot.timed_snapshot(stack, session)
            latencies = [await snapshot.timed_snapshot(stack, session) for _ in range(reps)]
        results.put_system(SNAP_NEAR_P50, Cell(value=percentile(latencies, 50)))
    finally:
        stack.stop()


async def measure(results: Results, mode: str, workdir: Path) -> None:
    """Every near-cache row."""
    cache = start_service("cache", cache_env(workdir / "near-cache"), workdir, label="near-cache")
    try:
        await hot_get(results, mode, cache.grpc_address, workdir)
        await invalidation(results, mode, cache.grpc_address, load=False)
        await invalidation(results, mode, cache.grpc_address, load=True)
    finally:
        cache.stop()
    await near_snapshot(results, {"smoke": 10, "quick": 100, "full": 300}[mode], workdir)


async def _main(mode: str) -> None:
    results = Results(mode=mode)
    with TemporaryDirectory() as tmp:
        await measure(results, mode, Path(tmp))
    for row in ROWS:
        cell = results.system_cell(row)
        figure = "-" if cell.value is None else f"{cell.value:.2f}"
        print(f"{row.label:55s} {figure:>10s} {row.unit}  {cell.note}")


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1] if len(sys.argv) > 1 else "quick"))
