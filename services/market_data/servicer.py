"""MarketDataService RPC handlers: thin; they validate, delegate and map errors to statuses."""

from __future__ import annotations

import logging

from marketcache.v1 import market_data_pb2, market_data_pb2_grpc
from services.common.errors import Context, answers_service_errors
from services.market_data.deadline import Deadline
from services.market_data.envelope import Provenance
from services.market_data.models import Article, Bar, Quote
from services.market_data.service import MarketData
from services.market_data.validation import (
    parse_days,
    parse_news_date,
    parse_news_limit,
    parse_symbol,
)

log = logging.getLogger(__name__)


class MarketDataServicer(market_data_pb2_grpc.MarketDataServiceServicer):
    """The MarketDataService gRPC API over the MarketData domain object."""

    def __init__(self, market: MarketData, request_budget: float) -> None:
        self._market = market
        self._budget = request_budget

    def _deadline(self, context: Context) -> Deadline:
        return Deadline.for_rpc(context.time_remaining(), self._budget)

    @answers_service_errors
    async def GetQuote(  # noqa: N802 (gRPC method name)
        self, request: market_data_pb2.GetQuoteRequest, context: Context
    ) -> market_data_pb2.GetQuoteResponse:
        symbol = parse_symbol(request.symbol)
        quote, provenance = await self._market.quote(symbol, self._deadline(context))
        return market_data_pb2.GetQuoteResponse(
            quote=quote_pb(quote), provenance=provenance_pb(provenance)
        )

    @answers_service_errors
    async def GetQuotes(  # noqa: N802 (gRPC method name)
        self, request: market_data_pb2.GetQuotesRequest, context: Context
    ) -> market_data_pb2.GetQuotesResponse:
        outcomes = await self._market.quotes(list(request.symbols), self._deadline(context))
        results = []
        for outcome in outcomes:
            result = market_data_pb2.QuoteResult(symbol=outcome.symbol)
            if outcome.error is not None:
                result.error_code = outcome.error.code.name
                result.error_message = outcome.error.message
            else:
                assert outcome.quote is not None and outcome.provenance is not None
                result.quote.CopyFrom(quote_pb(outcome.quote))
                result.provenance.CopyFrom(provenance_pb(outcome.provenance))
            results.append(result)
        return market_data_pb2.GetQuotesResponse(results=results)

    @answers_service_errors
    async def GetHistory(  # noqa: N802 (gRPC method name)
        self, request: market_data_pb2.GetHistoryRequest, context: Context
    ) -> market_data_pb2.GetHistoryResponse:
        symbol = parse_symbol(request.symbol)
        days = parse_days(request.days)
        bars, provenance = await self._market.history(symbol, days, self._deadline(context))
        return market_data_pb2.GetHistoryResponse(
            symbol=symbol, bars=[bar_pb(bar) for bar in bars], provenance=provenance_pb(provenance)
        )

    @answers_service_errors
    async def GetNews(  # noqa: N802 (gRPC method name)
        self, request: market_data_pb2.GetNewsRequest, context: Context
    ) -> market_data_pb2.GetNewsResponse:
        symbol = parse_symbol(request.symbol)
        day = parse_news_date(request.date, self._market.today())
        limit = parse_news_limit(request.limit)
        articles, provenance = await self._market.news(symbol, day, limit, self._deadline(context))
        return market_data_pb2.GetNewsResponse(
            symbol=symbol,
            date=day.isoformat(),
            articles=[article_pb(article) for article in articles],
            provenance=provenance_pb(provenance),
        )


def provenance_pb(provenance: Provenance) -> market_data_pb2.Provenance:
    return market_data_pb2.Provenance(
        provider=provenance.provider,
        cached=provenance.cached,
        age_seconds=round(provenance.age_seconds, 3),
        stale=provenance.stale,
        fresh_for_seconds=provenance.fresh_for,
        session=provenance.session,
        freshness_reason=provenance.freshness_reason,
        refresh=provenance.refresh,
    )


def quote_pb(quote: Quote) -> market_data_pb2.Quote:
    message = market_data_pb2.Quote(
        symbol=quote.symbol,
        name=quote.name,
        price=quote.price,
        change=quote.change,
        change_percent=quote.change_percent,
        open=quote.open,
        day_high=quote.day_high,
        day_low=quote.day_low,
        previous_close=quote.previous_close,
        volume=quote.volume,
    )
    if quote.timestamp:
        message.timestamp.FromNanoseconds(int(quote.timestamp * 1e9))
    return message


def bar_pb(bar: Bar) -> market_data_pb2.Bar:
    return market_data_pb2.Bar(
        date=bar.date,
        open=bar.open,
        high=bar.high,
        low=bar.low,
        close=bar.close,
        volume=bar.volume,
    )


def article_pb(article: Article) -> market_data_pb2.Article:
    message = market_data_pb2.Article(
        title=article.title, source=article.source, url=article.url, summary=article.summary
    )
    if article.published_at:
        message.published_at.FromNanoseconds(int(article.published_at * 1e9))
    return message
