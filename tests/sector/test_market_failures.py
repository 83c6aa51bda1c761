"""SectorService against a scripted MarketDataService (a real gRPC server on 127.0.0.1:0)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import grpc
import pytest

from marketcache.v1 import market_data_pb2, market_data_pb2_grpc, sector_pb2
from tests.sector.conftest import Sector, sector_service
from tests.sector.test_analytics import SESSION, business_days_before

Context = grpc.aio.ServicerContext[object, object]


class ScriptedMarket(market_data_pb2_grpc.MarketDataServiceServicer):
    """Every symbol closes 100, 101, ... over the 70 sessions before SESSION; SPY trades at
    180 and the rest at 200. Failures are switched on per test."""

    def __init__(self) -> None:
        self.history_error: grpc.StatusCode | None = None
        self.unquoted: str | None = None

    async def GetQuotes(  # noqa: N802 (gRPC method name)
        self, request: market_data_pb2.GetQuotesRequest, context: Context
    ) -> market_data_pb2.GetQuotesResponse:
        reply = market_data_pb2.GetQuotesResponse()
        for symbol in request.symbols:
            if symbol == self.unquoted:
                reply.results.add(
                    symbol=symbol, error_code="NOT_FOUND", error_message="no such listing"
                )
                continue
            price = 180.0 if symbol == "SPY" else 200.0
            quote = market_data_pb2.Quote(
                symbol=symbol, price=price, change=2.0, change_percent=1.5, volume=1000
            )
            quote.timestamp.FromDatetime(dt.datetime.combine(SESSION, dt.time(20), dt.UTC))
            reply.results.add(symbol=symbol, quote=quote)
        return reply

    async def GetQuote(  # noqa: N802 (gRPC method name)
        self, request: market_data_pb2.GetQuoteRequest, context: Context
    ) -> market_data_pb2.GetQuoteResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "SectorService uses GetQuotes")

    async def GetNews(  # noqa: N802 (gRPC method name)
        self, request: market_data_pb2.GetNewsRequest, context: Context
    ) -> market_data_pb2.GetNewsResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "SectorService needs no news")

    async def GetHistory(  # noqa: N802 (gRPC method name)
        self, request: market_data_pb2.GetHistoryRequest, context: Context
    ) -> market_data_pb2.GetHistoryResponse:
        if self.history_error is not None:
            await context.abort(self.history_error, "the upstream broke")
        days = business_days_before(SESSION, 70)
        bars = [
            market_data_pb2.Bar(date=day.isoformat(), close=100.0 + i) for i, day in enumerate(days)
        ]
        # Today's bar, as real providers send it: not a past close.
        bars.append(market_data_pb2.Bar(date=SESSION.isoformat(), close=999.0))
        return market_data_pb2.GetHistoryResponse(symbol=request.symbol, bars=bars)


@pytest.fixture
async def market() -> AsyncIterator[tuple[ScriptedMarket, str]]:
    server = grpc.aio.server()
    scripted = ScriptedMarket()
    market_data_pb2_grpc.add_MarketDataServiceServicer_to_server(scripted, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield scripted, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


@pytest.fixture
async def sector(market: tuple[ScriptedMarket, str]) -> AsyncIterator[Sector]:
    async with sector_service({"MARKET_DATA_ADDR": market[1], "CACHE_ENABLED": "false"}) as s:
        yield s


async def test_figures_from_history_to_answer(sector: Sector) -> None:
    reply = await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLK"))
    data = reply.sector
    assert data.performance == sector_pb2.Performance(
        day_1=1.5, day_5=21.2121, month_1=34.2282, month_3=86.9159, ytd=58.7302
    )
    # SPY at 180 on the same closes: 180/165, 180/149, 180/107, 180/126.
    assert data.relative_strength == sector_pb2.Performance(
        day_1=0.0,
        day_5=round(21.2121 - 9.0909, 4),
        month_1=round(34.2282 - 20.8054, 4),
        month_3=round(86.9159 - 68.2243, 4),
        ytd=round(58.7302 - 42.8571, 4),
    )
    assert data.trend == "strong-uptrend"
    assert data.as_of.ToDatetime().date() == SESSION


@pytest.mark.parametrize(
    ("upstream", "answered"),
    [
        (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE),
        (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.DEADLINE_EXCEEDED),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
async def test_history_failures_map_to_actionable_statuses(
    sector: Sector,
    market: tuple[ScriptedMarket, str],
    upstream: grpc.StatusCode,
    answered: grpc.StatusCode,
) -> None:
    market[0].history_error = upstream
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    assert caught.value.code() is answered
    assert f"GetHistory with {upstream.name}: the upstream broke" in (caught.value.details() or "")
    assert (
        sector.metric("sector_market_data_errors_total", method="GetHistory", code=upstream.name)
        >= 1
    )


async def test_a_symbol_without_a_quote_fails_naming_it(
    sector: Sector, market: tuple[ScriptedMarket, str]
) -> None:
    market[0].unquoted = "XLRE"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sector.stub.GetSectorSnapshot(sector_pb2.GetSectorSnapshotRequest())
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "market data unavailable for XLRE" in (caught.value.details() or "")
    # The other sectors still answer one by one.
    ok = await sector.stub.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLK"))
    assert ok.sector.price == 200.0
