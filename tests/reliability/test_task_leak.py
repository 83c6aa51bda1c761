"""No asyncio task outlives its request: cache, market_data and sector in this process.

The three servers run in the test's event loop, so asyncio.all_tasks() sees
theirs. Calls that succeed, fail, and are cancelled by their caller's deadline
mid-flight must all leave the task count where it was before the load.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import grpc
from prometheus_client import CollectorRegistry

from marketcache.v1 import (
    cache_pb2,
    cache_pb2_grpc,
    market_data_pb2,
    market_data_pb2_grpc,
    sector_pb2,
    sector_pb2_grpc,
)
from services.cache.config import CacheSettings
from services.cache.server import CacheServer
from services.common.config import Env
from services.common.json_value import to_value
from services.market_data import server as market_server
from services.market_data.config import MarketDataSettings
from services.sector import server as sector_server
from services.sector.config import SectorSettings
from tests.reliability.records import nothing_lost, record

CALLS = 1_500


async def _settled(baseline: int, within: float = 15.0) -> int:
    """Poll until the task count is back at `baseline` (or the deadline); the last count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        count = len(asyncio.all_tasks()) - 1  # not this test's own task
        if count <= baseline or loop.time() > deadline:
            return count
        await asyncio.sleep(0.02)


async def test_no_task_outlives_its_request(tmp_path: Path) -> None:
    cache_env = Env(
        {
            "CACHE_LISTEN": "127.0.0.1:0",
            "CACHE_METRICS_LISTEN": "127.0.0.1:0",
            "CACHE_DB_URL": f"sqlite:///{tmp_path / 'cache.db'}",
            "GRPC_DRAIN_SECONDS": "1",
        }
    )
    cache = CacheServer(CacheSettings.from_env(cache_env), CollectorRegistry())
    await cache.start()
    market_env = Env(
        {
            "MARKET_DATA_LISTEN": "127.0.0.1:0",
            "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
            "MARKET_SYNTHETIC_DATE": "2025-01-15",
            "CACHE_ADDR": cache.address,
            "CACHE_CLIENT_TIMEOUT": "5",
        }
    )
    market = market_server.build(
        MarketDataSettings.from_env(market_env), CollectorRegistry(), market_env
    )
    await market.process.start()
    await market.process.set_serving(True)
    sector_env = Env(
        {
            "SECTOR_LISTEN": "127.0.0.1:0",
            "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
            "CACHE_ADDR": cache.address,
            "MARKET_DATA_ADDR": market.process.address,
            "SECTOR_CACHE_TIMEOUT": "5",
        }
    )
    sector = sector_server.build(
        SectorSettings.from_env(sector_env), CollectorRegistry(), sector_env
    )
    await sector.process.start()
    await sector.process.set_serving(True)
    outcomes: Counter[str] = Counter()
    try:
        baseline = await _settled(10_000, within=0)  # whatever the servers keep running
        channels = [
            grpc.aio.insecure_channel(address)
            for address in (cache.address, market.process.address, sector.process.address)
        ]
        cache_stub = cache_pb2_grpc.CacheServiceStub(channels[0])
        market_stub = market_data_pb2_grpc.MarketDataServiceStub(channels[1])
        sector_stub = sector_pb2_grpc.SectorServiceStub(channels[2])
        rng = random.Random(11)

        async def one(i: int) -> None:
            # A tiny deadline now and then cancels the call while the server works on it.
            timeout = 0.001 if i % 7 == 0 else 30.0
            kind = i % 6
            try:
                if kind == 0:
                    value = to_value({"i": i})
                    put = cache_pb2.SetRequest(key=f"leak:{i % 50}", value=value)
                    await cache_stub.Set(put, timeout=timeout)
                elif kind == 1:
                    keys = [f"leak:{rng.randrange(60)}" for _ in range(5)]
                    await cache_stub.MGet(cache_pb2.MGetRequest(keys=keys), timeout=timeout)
                elif kind == 2:
                    await cache_stub.Get(cache_pb2.GetRequest(key="no prefix"), timeout=timeout)
                elif kind == 3:
                    symbol = rng.choice(["AAPL", "MSFT", "NOPE!", "XLK"])
                    quote = market_data_pb2.GetQuoteRequest(symbol=symbol)
                    await market_stub.GetQuote(quote, timeout=timeout)
                elif kind == 4:
                    history = market_data_pb2.GetHistoryRequest(symbol="NVDA", days=10)
                    await market_stub.GetHistory(history, timeout=timeout)
                else:
                    data = sector_pb2.GetSectorDataRequest(symbol=rng.choice(["XLK", "XLE", "ZZZ"]))
                    await sector_stub.GetSectorData(data, timeout=timeout)
                outcomes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                outcomes[exc.code().name] += 1

        for start in range(0, CALLS, 100):
            await asyncio.gather(*(one(i) for i in range(start, start + 100)))
        for channel in channels:
            await channel.close(None)
        after = await _settled(baseline)
    finally:
        await sector.process.stop()
        await market.process.stop()
        await cache.stop()
    record(
        "asyncio tasks after load (cache, market_data, sector in-process)",
        tried=(
            "successful, refused and deadline-cancelled calls to all three servers in one event "
            "loop; asyncio.all_tasks() counted before the load and after it settled"
        ),
        cases=f"{sum(outcomes.values())} calls; tasks {baseline} before, {after} after",
        lost=nothing_lost(max(after - baseline, 0), "leaked tasks"),
        figures={"answers": dict(outcomes)},
        passed=after <= baseline,
    )
    assert after <= baseline, f"{after - baseline} tasks outlived their requests"
    assert outcomes["OK"] > 0 and outcomes["DEADLINE_EXCEEDED"] > 0, outcomes
