"""Fixtures for MarketDataService tests: a fake clock, the fake upstream, a real cache, the app."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from harness.fakes.upstream import FakeUpstream
from marketcache.v1 import market_data_pb2_grpc
from services.client import CacheClient
from services.common.config import Env
from services.market_data.cache_aside import Cache
from services.market_data.config import MarketDataSettings
from services.market_data.server import FROM_ENV, MarketDataApp, _FromEnv, build
from tests.support.processes import ServiceProcess, start_service

# A Wednesday, so "today" is a trading day with a trading day before it.
TODAY = dt.date(2025, 1, 15)
# Mid-session that Wednesday: the market clock of every service a test starts,
# so freshness (60 s quotes during regular hours) does not depend on when the
# suite runs.
SESSION_NOW = "2025-01-15T10:30:00-05:00"


class FakeClock:
    """A clock tests move by hand (monotonic or wall, as the caller uses it)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    """The fake FMP / Alpha Vantage / NewsAPI server on an ephemeral port."""
    async with FakeUpstream(today=TODAY) as fake:
        yield fake


@pytest.fixture
def cache_process(tmp_path: Path) -> Iterator[ServiceProcess]:
    """A real CacheService subprocess on SQLite under tmp_path."""
    proc = start_service(
        "cache",
        {
            "CACHE_LISTEN": "127.0.0.1:0",
            "CACHE_METRICS_LISTEN": "127.0.0.1:0",
            "CACHE_DB_URL": f"sqlite:///{tmp_path}/cache.db",
        },
        tmp_path / "cache",
    )
    try:
        yield proc
    finally:
        proc.stop()


@dataclass
class Running:
    """A started in-process MarketDataService and a stub to call it."""

    app: MarketDataApp
    stub: market_data_pb2_grpc.MarketDataServiceAsyncStub
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def fmp_env(fake: FakeUpstream, **extra: str) -> dict[str, str]:
    """Settings for the FMP adapter pointed at the fake upstream."""
    return {
        "MARKET_PROVIDER": "fmp",
        "FMP_API_KEY": fake.api_key,
        "FMP_BASE_URL": fake.url,
        # Fast retries: the backoff is real time.
        "MARKET_RETRY_BASE_SECONDS": "0.01",
        "MARKET_RETRY_MAX_SECONDS": "0.02",
        "MARKET_UPSTREAM_TIMEOUT": "2",
        **extra,
    }


@asynccontextmanager
async def running_market(
    environ: Mapping[str, str],
    *,
    cache: Cache | _FromEnv | None = FROM_ENV,
    wall_clock: FakeClock | None = None,
) -> AsyncIterator[Running]:
    """Build, start and finally stop a MarketDataService on 127.0.0.1:0."""
    pinned = {} if "MARKET_SYNTHETIC_DATE" in environ else {"MARKET_NOW": SESSION_NOW}
    env = Env(
        {
            "MARKET_DATA_LISTEN": "127.0.0.1:0",
            "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
            **pinned,
            **environ,
        }
    )
    registry = CollectorRegistry()
    settings = MarketDataSettings.from_env(env)
    if wall_clock is None:
        app = build(settings, registry, env, cache=cache)
    else:
        app = build(settings, registry, env, cache=cache, wall_clock=wall_clock)
    await app.process.start()
    await app.process.set_serving(True)
    channel = grpc.aio.insecure_channel(app.process.address)
    try:
        yield Running(app, market_data_pb2_grpc.MarketDataServiceStub(channel), registry)
    finally:
        await channel.close(None)
        await app.process.stop()


def cache_client(proc: ServiceProcess) -> CacheClient:
    """A client of the cache process, with a timeout roomy enough for a loaded CI box."""
    return CacheClient(proc.grpc_address, timeout=5.0)
