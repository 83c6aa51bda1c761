"""SectorService against real market_data and cache processes."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from marketcache.v1 import market_data_pb2, market_data_pb2_grpc, sector_pb2
from services.sector.catalog import SECTORS
from tests.sector.conftest import ADMIN, Sector, scrape
from tests.support.processes import ServiceProcess

PERIODS = ("day_1", "day_5", "month_1", "month_3", "ytd")


async def test_list_sectors_names_the_eleven_etfs_and_the_benchmark(sector: Sector) -> None:
    reply = await sector.stub.ListSectors(sector_pb2.ListSectorsRequest())
    assert [(s.symbol, s.name) for s in reply.sectors] == list(SECTORS.items())
    assert reply.benchmark.symbol == "SPY"


async def test_sector_data_is_built_then_served_from_cache(
    sector: Sector, market_data: ServiceProcess
) -> None:
    first = await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="xlk"))
    assert first.cache.cached is False and first.cache.enabled is True
    data = first.sector
    assert (data.symbol, data.name) == ("XLK", "Technology")
    assert data.trend in ("strong-uptrend", "uptrend", "neutral", "downtrend", "strong-downtrend")

    # The price and 1-day change are the quote's.
    async with grpc.aio.insecure_channel(market_data.grpc_address) as channel:
        stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
        quote = (await stub.GetQuote(market_data_pb2.GetQuoteRequest(symbol="XLK"))).quote
    assert data.price == quote.price
    assert data.performance.day_1 == quote.change_percent
    assert data.as_of == quote.timestamp

    # Relative strength is the difference from SPY, period by period.
    spy = (await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="SPY"))).sector
    assert spy.relative_strength == sector_pb2.Performance()
    for period in PERIODS:
        expected = getattr(data.performance, period) - getattr(spy.performance, period)
        assert getattr(data.relative_strength, period) == pytest.approx(expected, abs=1e-3)

    second = await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLK"))
    assert second.cache.cached is True
    assert 0 <= second.cache.age_seconds < 60
    assert second.sector == first.sector
    assert sector.metric("sector_cache_hits_total", namespace="sectors") >= 1


@pytest.mark.parametrize(
    ("symbol", "code", "fragment"),
    [
        ("AAPL", grpc.StatusCode.NOT_FOUND, "valid symbols are XLB, XLC"),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "symbol is required"),
        ("XL K", grpc.StatusCode.INVALID_ARGUMENT, "not a ticker symbol"),
    ],
)
async def test_bad_symbols_get_specific_statuses(
    sector: Sector, symbol: str, code: grpc.StatusCode, fragment: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol=symbol))
    assert caught.value.code() is code
    assert fragment in (caught.value.details() or "")


def assert_consistent(snapshot: sector_pb2.GetSectorSnapshotResponse) -> None:
    assert [s.symbol for s in snapshot.sectors] == list(SECTORS)
    assert snapshot.benchmark.symbol == "SPY" and snapshot.benchmark.rank == 0
    by_symbol = {s.symbol: s for s in snapshot.sectors}
    month_1 = [by_symbol[s].performance.month_1 for s in snapshot.ranking]
    assert month_1 == sorted(month_1, reverse=True)
    assert sorted(snapshot.ranking) == sorted(SECTORS)
    assert [by_symbol[s].rank for s in snapshot.ranking] == list(range(1, 12))
    assert list(snapshot.top_performers) == list(snapshot.ranking[:3])
    assert list(snapshot.bottom_performers) == list(reversed(snapshot.ranking[-3:]))
    assert snapshot.as_of.seconds > 0


async def test_snapshot_ranks_every_sector_and_is_cached_on_the_second_call(
    sector: Sector,
) -> None:
    first = await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    assert_consistent(first)
    assert first.cache.cached is False
    second = await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    assert second.cache.cached is True and second.cache.enabled is True
    assert second.cache.age_seconds >= 0
    assert second.sectors == first.sectors and second.as_of == first.as_of
    assert sector.metric("sector_snapshot_build_seconds_count") == 1
    assert sector.metric("sector_cache_hits_total", namespace="snapshots") == 1


async def test_concurrent_cold_snapshots_share_one_build(
    sector: Sector, market_data: ServiceProcess
) -> None:
    before = scrape(market_data, "grpc_server_handled_total", grpc_method="GetQuotes")
    replies = await asyncio.gather(
        *(sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest()) for _ in range(8))
    )
    assert len({r.as_of.ToNanoseconds() for r in replies}) == 1
    assert sector.metric("sector_snapshot_build_seconds_count") == 1
    after = scrape(market_data, "grpc_server_handled_total", grpc_method="GetQuotes")
    assert after - before == 1


async def test_cache_stats_report_each_namespace(sector: Sector) -> None:
    await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLE"))
    stats = await sector.stub.GetCacheStats(sector_pb2.GetCacheStatsRequest())
    assert (stats.status, stats.enabled) == ("healthy", True)
    spaces = {n.namespace: n for n in stats.namespaces}
    assert list(spaces) == ["sectors", "snapshots", "metrics"]
    # The snapshot stored 12 sectors (with SPY), itself, and 12 history digests.
    assert (spaces["sectors"].keys, spaces["snapshots"].keys, spaces["metrics"].keys) == (12, 1, 12)
    assert spaces["snapshots"].hits == 1 and spaces["snapshots"].misses == 1
    assert spaces["sectors"].hits == 1  # XLE, stored by the snapshot
    assert stats.hits == sum(n.hits for n in stats.namespaces)
    assert stats.hit_rate == pytest.approx(stats.hits / (stats.hits + stats.misses))
    # This process's own view, for the seed's alert (hit rate below 0.7).
    own = sector.metric("sector_cache_hit_rate")
    assert 0 < own < 1


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("WarmCache", sector_pb2.WarmCacheRequest()),
        ("ClearAllCaches", sector_pb2.ClearAllCachesRequest()),
        (
            "SetBatchSectorData",
            sector_pb2.SetBatchSectorDataRequest(
                sectors=[sector_pb2.SectorData(symbol="XLK", price=1.0)]
            ),
        ),
    ],
)
async def test_admin_operations_need_the_token(
    sector: Sector, method: str, request_: object
) -> None:
    call = getattr(sector.stub, method)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await call(request_)
    assert missing.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await call(request_, metadata=(("authorization", "Bearer nope"),))
    assert wrong.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_warm_then_clear(sector: Sector) -> None:
    warmed = await sector.stub.WarmCache(sector_pb2.WarmCacheRequest(), metadata=ADMIN)
    assert (warmed.warmed, warmed.snapshot) == (12, True)
    assert set(warmed.symbols) == {*SECTORS, "SPY"}
    snapshot = await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    assert snapshot.cache.cached is True
    data = await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLU"))
    assert data.cache.cached is True

    cleared = await sector.stub.ClearAllCaches(sector_pb2.ClearAllCachesRequest(), metadata=ADMIN)
    assert list(cleared.namespaces) == ["sectors", "snapshots", "metrics"]
    assert cleared.deleted == 12 + 1 + 12
    stats = await sector.stub.GetCacheStats(sector_pb2.GetCacheStatsRequest())
    assert [n.keys for n in stats.namespaces] == [0, 0, 0]
    again = await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    assert again.cache.cached is False


async def test_warm_some_symbols_validates_them(sector: Sector) -> None:
    warmed = await sector.stub.WarmCache(
        sector_pb2.WarmCacheRequest(symbols=["xle"]), metadata=ADMIN
    )
    assert (list(warmed.symbols), warmed.snapshot) == (["XLE", "SPY"], False)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sector.stub.WarmCache(sector_pb2.WarmCacheRequest(symbols=["MSFT"]), metadata=ADMIN)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_batch_data_is_served_and_replaces_the_snapshot(sector: Sector) -> None:
    await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    batch = sector_pb2.SetBatchSectorDataRequest(
        sectors=[
            sector_pb2.SectorData(
                symbol="XLK", price=123.45, performance=sector_pb2.Performance(month_1=99.0)
            )
        ],
        ttl_seconds=120,
    )
    written = await sector.stub.SetBatchSectorData(batch, metadata=ADMIN)
    assert written.written == 1
    data = await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLK"))
    assert (data.sector.price, data.sector.name, data.cache.cached) == (123.45, "Technology", True)
    snapshot = await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    assert snapshot.cache.cached is False  # the old one was dropped
    assert snapshot.ranking[0] == "XLK" and snapshot.top_performers[0] == "XLK"

    bad = sector_pb2.SetBatchSectorDataRequest(sectors=[sector_pb2.SectorData(symbol="XLK")])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sector.stub.SetBatchSectorData(bad, metadata=ADMIN)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "sectors[0].price" in (caught.value.details() or "")
