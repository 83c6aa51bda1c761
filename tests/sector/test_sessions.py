"""Sector data and snapshots: fresh for their TTLs in the session, else until the next open."""

from __future__ import annotations

import pytest

from marketcache.v1 import sector_pb2
from services.client import CacheClient
from services.common.config import ConfigError, Env
from services.sector.config import SectorSettings
from tests.sector.conftest import sector_service
from tests.support.processes import ServiceProcess

HOUR = 3600
SNAPSHOT = sector_pb2.GetSectorSnapshotRequest()


def env(market_data: ServiceProcess, cache: ServiceProcess, **extra: str) -> dict[str, str]:
    return {"MARKET_DATA_ADDR": market_data.grpc_address, "CACHE_ADDR": cache.grpc_address, **extra}


async def test_in_the_session_sector_ttls_apply(
    market_data: ServiceProcess, cache: ServiceProcess
) -> None:
    async with sector_service(env(market_data, cache)) as sector:  # pinned mid-session
        data = await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLK"))
        snapshot = await sector.stub.GetSectorSnapshot(SNAPSHOT)
    assert (data.cache.session, data.cache.fresh_for_seconds) == ("open", 900)
    assert data.cache.freshness_reason == "regular hours: SECTOR_TTL_DATA"
    assert (snapshot.cache.session, snapshot.cache.fresh_for_seconds) == ("open", 300)
    assert snapshot.cache.freshness_reason == "regular hours: SECTOR_TTL_SNAPSHOT"


async def test_on_a_holiday_sector_data_stays_fresh_until_the_next_open(
    market_data: ServiceProcess, cache: ServiceProcess
) -> None:
    holiday = env(
        market_data,
        cache,
        MARKET_NOW="2026-12-25T12:00:00-05:00",
        MARKET_TTL_CLOSED_MAX=str(7 * 24 * HOUR),
    )
    async with sector_service(holiday) as sector:
        cold = await sector.stub.GetSectorSnapshot(SNAPSHOT)
        warm = await sector.stub.GetSectorSnapshot(SNAPSHOT)
        data = await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLF"))
    until_open = 69.5 * HOUR  # to Monday 2026-12-28 09:30 New York
    for info in (cold.cache, warm.cache, data.cache):
        assert info.session == "holiday"
        assert info.fresh_for_seconds == pytest.approx(until_open, abs=2)
        assert info.freshness_reason.startswith(
            "Christmas Day: market closed until 2026-12-28T09:30-05:00"
        )
    assert (cold.cache.cached, warm.cache.cached, data.cache.cached) == (False, True, True)

    # The cache holds them as long: its own TTL is the freshness given.
    client = CacheClient(cache.grpc_address, timeout=5.0)
    try:
        stored = await client.get("snapshots:latest")
    finally:
        await client.close()
    assert isinstance(stored, dict)
    assert stored["session"] == "holiday" and stored["freshFor"] == pytest.approx(until_open, 2)


async def test_outside_the_session_the_cap_applies(
    market_data: ServiceProcess, cache: ServiceProcess
) -> None:
    weekend = env(
        market_data, cache, MARKET_NOW="2026-11-21T12:00:00-05:00", MARKET_TTL_CLOSED_MAX="3600"
    )
    async with sector_service(weekend) as sector:
        data = await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLE"))
    assert (data.cache.session, data.cache.fresh_for_seconds) == ("closed", 3600)
    assert data.cache.freshness_reason.endswith("capped by MARKET_TTL_CLOSED_MAX")


def test_a_bad_market_now_fails_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        SectorSettings.from_env(Env({"MARKET_NOW": "yesterday"}))
    assert str(caught.value).startswith("MARKET_NOW: expected an ISO-8601 time")
