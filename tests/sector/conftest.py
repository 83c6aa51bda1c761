"""SectorService in-process on 127.0.0.1:0, against real cache and market_data processes."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from marketcache.v1 import sector_pb2, sector_pb2_grpc
from services.common.config import Env
from services.sector.config import SectorSettings
from services.sector.server import SectorApp, build
from tests.support.processes import REPO as REPO_ROOT
from tests.support.processes import ServiceProcess, running, start_service

__all__ = ["REPO_ROOT"]

TOKEN = "sector-test-token"
# Pinned, so every process computes the same synthetic market (a Wednesday).
SYNTHETIC_DATE = "2025-01-15"
# Mid-session that day: SectorService's market clock, so its TTLs are the
# regular-hours ones (SECTOR_TTL_DATA, SECTOR_TTL_SNAPSHOT) whenever the suite runs.
SESSION_NOW = "2025-01-15T10:30:00-05:00"
ADMIN = (("authorization", f"Bearer {TOKEN}"),)


def cache_env(db_dir: Path, listen: str = "127.0.0.1:0") -> dict[str, str]:
    return {
        "CACHE_LISTEN": listen,
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": f"sqlite:///{db_dir / 'cache.db'}",
        "ADMIN_TOKEN": TOKEN,
    }


@pytest.fixture(scope="module")
def market_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One MarketDataService for the module, without a cache of its own (stateless)."""
    env = {
        "MARKET_DATA_LISTEN": "127.0.0.1:0",
        "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
        "MARKET_PROVIDER": "synthetic",
        "MARKET_SYNTHETIC_DATE": SYNTHETIC_DATE,
        "CACHE_ENABLED": "false",
    }
    with running("market_data", env, tmp_path_factory.mktemp("market_data")) as proc:
        yield proc


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ServiceProcess]:
    """A fresh CacheService (its own SQLite file) for each test."""
    proc = start_service("cache", cache_env(tmp_path), tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


@dataclass
class Sector:
    """A running in-process SectorService and a stub to call it."""

    app: SectorApp
    stub: sector_pb2_grpc.SectorServiceAsyncStub
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@asynccontextmanager
async def sector_service(env: Mapping[str, str]) -> AsyncIterator[Sector]:
    """Start SectorService on 127.0.0.1:0 with `env` over test defaults; stop it after."""
    settings_env = Env(
        {
            "SECTOR_LISTEN": "127.0.0.1:0",
            "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
            "ADMIN_TOKEN": TOKEN,
            "GRPC_DRAIN_SECONDS": "0",
            "MARKET_NOW": SESSION_NOW,
            **env,
        }
    )
    registry = CollectorRegistry()
    app = build(SectorSettings.from_env(settings_env), registry, settings_env)
    await app.process.start()
    await app.process.set_serving(True)
    channel = grpc.aio.insecure_channel(app.process.address)
    try:
        yield Sector(app, sector_pb2_grpc.SectorServiceStub(channel), registry)
    finally:
        await channel.close(None)
        await app.process.stop()


@pytest.fixture
async def sector(market_data: ServiceProcess, cache: ServiceProcess) -> AsyncIterator[Sector]:
    """SectorService with caching on, wired to this test's cache."""
    env = {"MARKET_DATA_ADDR": market_data.grpc_address, "CACHE_ADDR": cache.grpc_address}
    async with sector_service(env) as service:
        yield service


def scrape(proc: ServiceProcess, metric: str, **labels: str) -> float:
    """One sample from a process's /metrics endpoint (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.metrics_port}/metrics") as reply:
        text = reply.read().decode()
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        match = re.match(rf"^{metric}\{{(.*)\}} (\S+)$", line)
        if match and wanted <= set(match.group(1).split(",")):
            return float(match.group(2))
    return 0.0


def without_volatile(
    snapshot: sector_pb2.GetSectorSnapshotResponse,
) -> sector_pb2.GetSectorSnapshotResponse:
    """The snapshot minus what may differ between identical answers: cache info, as-of."""
    copy = sector_pb2.GetSectorSnapshotResponse()
    copy.CopyFrom(snapshot)
    copy.ClearField("cache")
    copy.ClearField("as_of")
    return copy
