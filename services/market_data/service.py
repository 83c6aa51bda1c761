"""MarketData: the domain behind the servicer (validated input in, models and provenance out)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from services.common.errors import ServiceError
from services.common.json_value import JSON
from services.market_data.cache_aside import CacheAside
from services.market_data.cache_keys import history_key, news_key, quote_key
from services.market_data.deadline import Deadline
from services.market_data.envelope import Envelope, Provenance
from services.market_data.market_session import Freshness, SessionFreshness
from services.market_data.models import Article, Bar, Quote
from services.market_data.providers.base import BatchQuotes, NewsProvider, PriceProvider
from services.market_data.quote_batch import QuoteBatch
from services.market_data.resilience import ProviderGuard
from services.market_data.ttl_policy import TtlPolicy
from services.market_data.validation import MAX_NEWS_LIMIT, parse_symbol, parse_symbols


@dataclass(frozen=True)
class QuoteOutcome:
    """One symbol of a batch: its quote and provenance, or the error it met."""

    symbol: str
    quote: Quote | None = None
    provenance: Provenance | None = None
    error: ServiceError | None = None


class MarketData:
    """Quotes, history and news, cache-aside over the configured providers."""

    def __init__(
        self,
        *,
        prices: PriceProvider,
        news: NewsProvider,
        guards: Mapping[str, ProviderGuard],
        cache: CacheAside,
        ttl: TtlPolicy,
        freshness: SessionFreshness,
        today: Callable[[], dt.date],
        batch_limit: int = 100,
    ) -> None:
        self._prices = prices
        self._news = news
        self._guards = guards
        self._cache = cache
        self._ttl = ttl
        self._freshness = freshness
        self.today = today
        self.batch_limit = batch_limit

    def _quote_freshness(self) -> Freshness:
        return self._freshness.follows_session(self._ttl.quote, "MARKET_TTL_QUOTE")

    async def quote(
        self,
        symbol: str,
        deadline: Deadline,
        *,
        cached: Envelope | None = None,
        looked_up: bool = False,
        batch: QuoteBatch | None = None,
    ) -> tuple[Quote, Provenance]:
        """The quote of a valid, uppercased symbol (from `batch` when it holds the symbol)."""
        guard = self._guards[self._prices.name]

        async def load(within: Deadline) -> tuple[str, JSON]:
            if batch is not None and symbol in batch.symbols:
                quote = await batch.quote(symbol, within)
            else:
                quote = await guard.call(
                    "quote", lambda timeout: self._prices.quote(symbol, timeout), within
                )
            return self._prices.name, quote.to_json()

        served = await self._cache.fetch(
            "quote",
            quote_key(symbol),
            load,
            self._quote_freshness,
            deadline,
            cached=cached,
            looked_up=looked_up,
        )
        return Quote.from_json(served.data), served.provenance

    async def quotes(self, raw_symbols: list[str], deadline: Deadline) -> list[QuoteOutcome]:
        """Quotes in request order; a symbol's failure is reported, not raised."""
        wanted = parse_symbols(raw_symbols, self.batch_limit)
        parsed: dict[str, str | ServiceError] = {}
        for raw in wanted:
            try:
                parsed[raw] = parse_symbol(raw, "symbols")
            except ServiceError as exc:
                parsed[raw] = exc
        symbols = sorted({s for s in parsed.values() if isinstance(s, str)})
        # One cache round trip for the whole batch, then only the misses go upstream.
        envelopes = await self._cache.read_many([quote_key(s) for s in symbols])
        batch = None
        if isinstance(self._prices, BatchQuotes):
            # Those the cache cannot answer now, fetched together (FMP's batch quote).
            missing = [
                s for s, e in zip(symbols, envelopes, strict=True) if self._cache.must_load(e)
            ]
            batch = QuoteBatch(
                self._prices, self._prices.name, self._guards[self._prices.name], missing
            )
        results = await asyncio.gather(
            *(
                self.quote(symbol, deadline, cached=envelope, looked_up=True, batch=batch)
                for symbol, envelope in zip(symbols, envelopes, strict=True)
            ),
            return_exceptions=True,
        )
        by_symbol: dict[str, QuoteOutcome] = {}
        for symbol, result in zip(symbols, results, strict=True):
            if isinstance(result, ServiceError):
                by_symbol[symbol] = QuoteOutcome(symbol, error=result)
            elif isinstance(result, BaseException):
                raise result
            else:
                by_symbol[symbol] = QuoteOutcome(symbol, quote=result[0], provenance=result[1])
        outcomes = []
        for raw in wanted:
            value = parsed[raw]
            if isinstance(value, ServiceError):
                outcomes.append(QuoteOutcome(raw, error=value))
            else:
                outcomes.append(by_symbol[value])
        return outcomes

    async def history(
        self, symbol: str, days: int, deadline: Deadline
    ) -> tuple[list[Bar], Provenance]:
        """The last `days` daily bars of a valid symbol, oldest first."""
        guard = self._guards[self._prices.name]

        async def load(within: Deadline) -> tuple[str, JSON]:
            bars = await guard.call(
                "history", lambda timeout: self._prices.history(symbol, days, timeout), within
            )
            return self._prices.name, [bar.to_json() for bar in bars]

        def freshness() -> Freshness:
            return self._freshness.follows_session(self._ttl.history, "MARKET_TTL_HISTORY")

        served = await self._cache.fetch(
            "history", history_key(symbol, days), load, freshness, deadline
        )
        return [Bar.from_json(row) for row in _rows(served.data)], served.provenance

    async def news(
        self, symbol: str, day: dt.date, limit: int, deadline: Deadline
    ) -> tuple[list[Article], Provenance]:
        """Up to `limit` articles about a valid symbol on `day`, newest first."""
        guard = self._guards[self._news.name]

        async def load(within: Deadline) -> tuple[str, JSON]:
            # Fetch (and cache) the most any request may ask for; slice per request.
            articles = await guard.call(
                "news",
                lambda timeout: self._news.news(symbol, day, MAX_NEWS_LIMIT, timeout),
                within,
            )
            return self._news.name, [article.to_json() for article in articles]

        def freshness() -> Freshness:
            return self._freshness.fixed(self._ttl.news, "MARKET_TTL_NEWS")

        served = await self._cache.fetch("news", news_key(symbol, day), load, freshness, deadline)
        articles = [Article.from_json(row) for row in _rows(served.data)]
        return articles[:limit], served.provenance


def _rows(data: JSON) -> list[JSON]:
    return data if isinstance(data, list) else []
