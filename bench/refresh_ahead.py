"""Refresh ahead: 50 hot symbols read continuously, with and without refresh-ahead.

Each variant gets its own cache and market_data (FMP, in front of the fake
upstream with its 100 ms delay) with a short quote TTL so that many expiries
fall inside the run. "With" is the default (XFetch refresh-ahead plus
stale-while-revalidate); "without" sets MARKET_REFRESH_AHEAD_BETA=0 and
MARKET_STALE_WHILE_REVALIDATE=0, so a reader that finds an expired quote waits
for the upstream. The market clock is pinned inside a session (MARKET_NOW),
so the quote TTL is the regular-hours one whenever the benchmark runs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.market_stack import FMP_KEY, UPSTREAM_DELAY_MS
from bench.results import (
    REFRESH_AHEAD_CALLS,
    REFRESH_AHEAD_P99,
    REFRESH_PLAIN_CALLS,
    REFRESH_PLAIN_P99,
    Cell,
    Results,
)
from bench.servers import cache_env, start_module
from bench.sizes import Sizes
from bench.stats import percentile
from harness.fakes.market_formats import DEFAULT_SYMBOLS
from harness.fakes.upstream import extra_symbol
from harness.process import spawn
from harness.readiness import read_ready_file as read_ready
from marketcache.v1 import market_data_pb2, market_data_pb2_grpc
from services.common.channels import open_channel

HOT_SYMBOLS = 50
READERS = 16
# A mid-session instant: regular-hours TTLs apply.
SESSION_NOW = "2026-11-24T11:00:00-05:00"
ROWS = (REFRESH_AHEAD_CALLS, REFRESH_PLAIN_CALLS, REFRESH_AHEAD_P99, REFRESH_PLAIN_P99)
OFF = {"MARKET_REFRESH_AHEAD_BETA": "0", "MARKET_STALE_WHILE_REVALIDATE": "0"}


@dataclass(frozen=True)
class Plan:
    """Seconds of continuous reading per variant and the quote TTL, per mode."""

    seconds: float
    ttl: int


PLANS = {"smoke": Plan(3.0, 1), "quick": Plan(20.0, 5), "full": Plan(60.0, 5)}


def hot_symbols() -> list[str]:
    """50 symbols the fake upstream quotes: its named ones, then its made-up tickers."""
    named = sorted(DEFAULT_SYMBOLS)
    extra = [extra_symbol(i) for i in range(max(HOT_SYMBOLS - len(named), 0))]
    return (named + extra)[:HOT_SYMBOLS]


async def measure(results: Results, sizes: Sizes, workdir: Path) -> None:
    """Record upstream calls per minute and read p99, with and without refresh-ahead."""
    plan = PLANS[sizes.mode]
    argv = ["harness.fakes.upstream", "--port", "0", "--delay-ms", str(UPSTREAM_DELAY_MS)]
    argv += ["--api-key", FMP_KEY, "--extra-symbols", str(HOT_SYMBOLS)]
    # The fake writes its own ready file, where spawn() expects the label's.
    argv += ["--ready-file", str(workdir / "upstream-refresh.ready.json")]
    upstream = spawn(argv, {}, workdir, "upstream-refresh")
    try:
        url = str(read_ready(upstream)["url"])
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            for with_it, calls_row, p99_row in (
                (True, REFRESH_AHEAD_CALLS, REFRESH_AHEAD_P99),
                (False, REFRESH_PLAIN_CALLS, REFRESH_PLAIN_P99),
            ):
                label = "with" if with_it else "without"
                per_minute, p99, reads = await _variant(
                    url, session, plan, workdir / f"refresh-{label}", with_it
                )
                note = (
                    f"{HOT_SYMBOLS} symbols, {READERS} readers, {plan.seconds:.0f} s, "
                    f"quote TTL {plan.ttl} s, upstream {UPSTREAM_DELAY_MS} ms, {reads} reads"
                )
                results.put_system(calls_row, Cell(value=per_minute, note=note))
                results.put_system(p99_row, Cell(value=p99, note=note))
    finally:
        upstream.stop()


async def _variant(
    upstream_url: str, session: aiohttp.ClientSession, plan: Plan, workdir: Path, with_it: bool
) -> tuple[float, float, int]:
    cache = start_module("services.cache", cache_env(workdir / "cache"), workdir, "cache")
    market = None
    try:
        market = start_module(
            "services.market_data",
            {
                "MARKET_DATA_LISTEN": "127.0.0.1:0",
                "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
                "MARKET_PROVIDER": "fmp",
                "FMP_BASE_URL": upstream_url,
                "FMP_API_KEY": FMP_KEY,
                "MARKET_RATE_LIMIT_PER_MINUTE": "0",
                "MARKET_TTL_QUOTE": str(plan.ttl),
                "MARKET_NOW": SESSION_NOW,
                "CACHE_ADDR": cache.grpc_address,
                "LOG_LEVEL": "WARNING",
                "LOG_FORMAT": "text",
                **({} if with_it else OFF),
            },
            workdir,
            "market_data",
        )
        channel = open_channel(market.grpc_address)
        stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
        symbols = hot_symbols()
        try:
            # Warm every symbol once, then count only the steady state.
            await asyncio.gather(
                *(stub.GetQuote(market_data_pb2.GetQuoteRequest(symbol=s)) for s in symbols)
            )
            before = await _upstream_calls(session, upstream_url)
            stop_at = time.monotonic() + plan.seconds

            async def reader(offset: int) -> list[float]:
                latencies: list[float] = []
                i = offset
                while time.monotonic() < stop_at:
                    request = market_data_pb2.GetQuoteRequest(symbol=symbols[i % len(symbols)])
                    start = time.perf_counter()
                    await stub.GetQuote(request, timeout=30.0)
                    latencies.append((time.perf_counter() - start) * 1000.0)
                    i += 1
                return latencies

            started = time.monotonic()
            runs = await asyncio.gather(*(reader(r * 7) for r in range(READERS)))
            elapsed = time.monotonic() - started
            calls = await _upstream_calls(session, upstream_url) - before
        finally:
            await channel.close(None)
    finally:
        if market is not None:
            market.stop()
        cache.stop()
    latencies = [ms for run in runs for ms in run]
    return calls / elapsed * 60.0, percentile(latencies, 99), len(latencies)


async def _upstream_calls(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(f"{url}/_control/calls") as reply:
        reply.raise_for_status()
        return int((await reply.json())["total"])
