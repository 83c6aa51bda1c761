"""MarketDataService calls SectorService makes, with failures mapped to actionable statuses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import grpc

from marketcache.v1 import market_data_pb2, market_data_pb2_grpc
from services.common.errors import ServiceError
from services.sector.analytics import DailyClose
from services.sector.metrics import SectorMetrics

# Codes worth passing on as they are: the client can act on them (retry later, back off).
_PASS_THROUGH = {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}


class MarketDataClient:
    """Quotes and daily closes from MarketDataService at MARKET_DATA_ADDR."""

    def __init__(
        self, channel: grpc.aio.Channel, address: str, metrics: SectorMetrics, timeout: float
    ) -> None:
        self._stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
        self._address = address
        self._metrics = metrics
        self._timeout = timeout

    async def quotes(self, symbols: Sequence[str]) -> dict[str, market_data_pb2.Quote]:
        """One GetQuotes call; any symbol without a quote fails the whole call."""
        try:
            reply = await self._stub.GetQuotes(
                market_data_pb2.GetQuotesRequest(symbols=list(symbols)), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise self._failed("GetQuotes", exc.code(), exc.details() or "", symbols) from None
        quotes: dict[str, market_data_pb2.Quote] = {}
        for result in reply.results:
            if result.error_code or not result.HasField("quote"):
                code = _code_named(result.error_code)
                raise self._failed("GetQuotes", code, result.error_message, [result.symbol])
            quotes[result.symbol.upper()] = result.quote
        missing = [s for s in symbols if s not in quotes]
        if missing:
            raise self._failed("GetQuotes", grpc.StatusCode.NOT_FOUND, "no result", missing)
        return quotes

    async def closes(self, symbol: str, days: int) -> list[DailyClose]:
        """Daily closes of `symbol` over the last `days` sessions, oldest first."""
        try:
            reply = await self._stub.GetHistory(
                market_data_pb2.GetHistoryRequest(symbol=symbol, days=days),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise self._failed("GetHistory", exc.code(), exc.details() or "", [symbol]) from None
        try:
            return [DailyClose(dt.date.fromisoformat(b.date), b.close) for b in reply.bars]
        except ValueError as exc:
            raise self._failed(
                "GetHistory", grpc.StatusCode.INTERNAL, f"malformed bar date: {exc}", [symbol]
            ) from None

    def _failed(
        self, method: str, code: grpc.StatusCode, detail: str, symbols: Sequence[str]
    ) -> ServiceError:
        self._metrics.market_errors.labels(method, code.name).inc()
        answer = code if code in _PASS_THROUGH else grpc.StatusCode.UNAVAILABLE
        return ServiceError(
            answer,
            f"market data unavailable for {', '.join(symbols)}: MarketDataService at "
            f"{self._address} answered {method} with {code.name}: {detail}".rstrip(": "),
        )


def _code_named(name: str) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.name == name:
            return code
    return grpc.StatusCode.UNKNOWN


def session_of(quote: market_data_pb2.Quote) -> dt.date:
    """The trading session a quote belongs to: its timestamp's UTC date (today without one)."""
    if quote.HasField("timestamp") and (quote.timestamp.seconds or quote.timestamp.nanos):
        return quote.timestamp.ToDatetime(tzinfo=dt.UTC).date()
    return dt.datetime.now(dt.UTC).date()
