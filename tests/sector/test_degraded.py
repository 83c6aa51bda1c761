"""Caching off, the cache down, market data down: SectorService still answers, and says so."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from marketcache.v1 import sector_pb2, sector_pb2_grpc
from tests.conftest import free_port
from tests.sector.conftest import (
    ADMIN,
    REPO_ROOT,
    Sector,
    cache_env,
    sector_service,
    without_volatile,
)
from tests.support.processes import ServiceProcess, running, start_service

SNAPSHOT = sector_pb2.GetSectorSnapshotRequest()


async def every_read(sector: Sector) -> dict[str, object]:
    """Call every read RPC once; each must answer."""
    return {
        "list": await sector.stub.ListSectors(sector_pb2.ListSectorsRequest()),
        "xlk": await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLK")),
        "spy": await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="SPY")),
        "snapshot": await sector.stub.GetSectorSnapshot(SNAPSHOT),
        "stats": await sector.stub.GetCacheStats(sector_pb2.GetCacheStatsRequest()),
    }


async def admin_refusals(sector: Sector) -> list[grpc.aio.AioRpcError]:
    """WarmCache and ClearAllCaches with the right token; both must fail."""
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: sector.stub.WarmCache(sector_pb2.WarmCacheRequest(), metadata=ADMIN),
        lambda: sector.stub.ClearAllCaches(sector_pb2.ClearAllCachesRequest(), metadata=ADMIN),
    ]
    errors = []
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        errors.append(caught.value)
    return errors


async def test_caching_off_gives_identical_answers(
    market_data: ServiceProcess, cache: ServiceProcess
) -> None:
    wiring = {"MARKET_DATA_ADDR": market_data.grpc_address, "CACHE_ADDR": cache.grpc_address}
    async with (
        sector_service(wiring) as cached,
        sector_service({**wiring, "CACHE_ENABLED": "false"}) as plain,
    ):
        cold = await cached.stub.GetSectorSnapshot(SNAPSHOT)
        warm = await cached.stub.GetSectorSnapshot(SNAPSHOT)
        direct = await plain.stub.GetSectorSnapshot(SNAPSHOT)
        assert (cold.cache.cached, warm.cache.cached) == (False, True)
        assert direct.cache == sector_pb2.CacheInfo(cached=False, age_seconds=0, enabled=False)
        assert without_volatile(cold) == without_volatile(warm) == without_volatile(direct)

        for symbol in ("XLK", "XLRE", "SPY"):
            ask = sector_pb2.GetSectorDataRequest(symbol=symbol)
            hit = await cached.stub.GetSectorData(ask)
            assert hit.cache.cached is True  # stored by the snapshot
            assert hit.sector == (await plain.stub.GetSectorData(ask)).sector

        stats = await plain.stub.GetCacheStats(sector_pb2.GetCacheStatsRequest())
        assert (stats.status, stats.enabled, stats.hits, stats.misses) == ("degraded", False, 0, 0)
        assert [n.namespace for n in stats.namespaces] == ["sectors", "snapshots", "metrics"]
        assert plain.metric("sector_cache_available") == 0
        assert plain.metric("sector_cache_misses_total", namespace="sectors") == 0
        assert cached.metric("sector_cache_available") == 1

        for error in await admin_refusals(plain):
            assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "CACHE_ENABLED=false" in (error.details() or "")


async def test_the_cache_going_down_and_coming_back(
    market_data: ServiceProcess, cache: ServiceProcess, tmp_path: Path
) -> None:
    wiring = {
        "MARKET_DATA_ADDR": market_data.grpc_address,
        "CACHE_ADDR": cache.grpc_address,
        "SECTOR_CACHE_RETRY_SECONDS": "0.2",
    }
    async with sector_service(wiring) as sector:
        before = await every_read(sector)
        cache.kill9()

        during = await every_read(sector)
        stats = during["stats"]
        assert isinstance(stats, sector_pb2.GetCacheStatsResponse)
        assert (stats.status, stats.enabled) == ("degraded", False)
        snapshot = during["snapshot"]
        assert isinstance(snapshot, sector_pb2.GetSectorSnapshotResponse)
        assert snapshot.cache.enabled is False and snapshot.cache.cached is False
        assert without_volatile(snapshot) == without_volatile(before["snapshot"])  # type: ignore[arg-type]
        assert sector.metric("sector_cache_available") == 0
        assert sector.metric("sector_cache_errors_total", operation="read") >= 1
        for error in await admin_refusals(sector):
            assert error.code() is grpc.StatusCode.UNAVAILABLE
            assert cache.grpc_address in (error.details() or "")

        # The same address and database again: caching resumes, with the durable entries.
        revived = start_service(
            "cache", cache_env(tmp_path, listen=cache.grpc_address), tmp_path, label="revived"
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                stats = await sector.stub.GetCacheStats(sector_pb2.GetCacheStatsRequest())
                if stats.status == "healthy" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert stats.status == "healthy"
            again = await sector.stub.GetSectorSnapshot(SNAPSHOT)
            assert again.cache.cached is True and again.cache.enabled is True
            assert sector.metric("sector_cache_available") == 1
        finally:
            revived.stop()


async def test_market_data_down_is_unavailable_and_names_it() -> None:
    dead = f"127.0.0.1:{free_port()}"
    async with sector_service({"MARKET_DATA_ADDR": dead, "SECTOR_MARKET_TIMEOUT": "3"}) as sector:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLK"))
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert f"MarketDataService at {dead}" in (caught.value.details() or "")
        assert (
            sector.metric("sector_market_data_errors_total", method="GetQuotes", code="UNAVAILABLE")
            == 1
        )
        # No CACHE_ADDR at all: degraded, and the admin operations say what to set.
        stats = await sector.stub.GetCacheStats(sector_pb2.GetCacheStatsRequest())
        assert stats.status == "degraded"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await sector.stub.WarmCache(sector_pb2.WarmCacheRequest(), metadata=ADMIN)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "CACHE_ADDR" in (refused.value.details() or "")


def test_the_process_warms_the_cache_at_start_when_asked(
    market_data: ServiceProcess, cache: ServiceProcess, tmp_path: Path
) -> None:
    env = {
        "SECTOR_LISTEN": "127.0.0.1:0",
        "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
        "MARKET_DATA_ADDR": market_data.grpc_address,
        "CACHE_ADDR": cache.grpc_address,
        "SECTOR_WARM_ON_START": "true",
    }
    with (
        running("sector", env, tmp_path) as proc,
        grpc.insecure_channel(proc.grpc_address) as channel,
    ):
        stub = sector_pb2_grpc.SectorServiceStub(channel)
        deadline = time.monotonic() + 20
        keys: list[int] = []
        while time.monotonic() < deadline:
            stats = stub.GetCacheStats(sector_pb2.GetCacheStatsRequest())
            keys = [n.keys for n in stats.namespaces]
            if keys == [12, 1, 12]:
                break
            time.sleep(0.1)
        assert keys == [12, 1, 12], proc.log()
        assert stub.GetSectorSnapshot(SNAPSHOT).cache.cached is True
        assert "cache warmed at start-up" in proc.log()


def test_bad_configuration_fails_at_start_naming_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.sector"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "SECTOR_TTL_DATA": "soon"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: SECTOR_TTL_DATA: expected an integer, got 'soon'"
    )
