"""Stampede: 100 concurrent cold GetQuote calls for one symbol, counting upstream calls."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bench.market_stack import MarketStack
from bench.results import STAMPEDE_CALLS, STAMPEDE_P50, Cell, Results
from bench.sizes import Sizes
from bench.stats import percentile
from marketcache.v1 import market_data_pb2, market_data_pb2_grpc
from services.common.channels import open_channel

# Symbols the fake upstream knows that no snapshot touches; one per stampede.
SYMBOLS = ("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "JPM", "IBM", "QQQ")


async def measure(
    results: Results, sizes: Sizes, stack: MarketStack, session: aiohttp.ClientSession
) -> None:
    """Run the stampedes through market_data's gRPC API; record upstream calls and latency."""
    channel = open_channel(stack.market_data_addr)
    stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
    calls: list[float] = []
    p50s: list[float] = []
    try:
        for i in range(sizes.stampedes):
            symbol = SYMBOLS[i % len(SYMBOLS)]
            await stack.clear_prefix(session, "stock")
            await stack.reset_upstream(session)
            request = market_data_pb2.GetQuoteRequest(symbol=symbol)

            async def one(request: market_data_pb2.GetQuoteRequest = request) -> float:
                start = time.perf_counter()
                await stub.GetQuote(request, timeout=60.0)
                return (time.perf_counter() - start) * 1000.0

            latencies = await asyncio.gather(*(one() for _ in range(sizes.stampede_requests)))
            calls.append(float(await stack.upstream_calls(session)))
            p50s.append(percentile(latencies, 50))
    finally:
        await channel.close(None)
    n = sizes.stampede_requests
    results.put_system(
        STAMPEDE_CALLS,
        # The worst stampede, not the median: one extra call anywhere misses the target.
        Cell(value=max(calls), note=f"worst of {len(calls)} stampedes of {n}", reps=tuple(calls)),
    )
    results.put_system(STAMPEDE_P50, Cell.of(p50s, f"{n} concurrent requests"))
