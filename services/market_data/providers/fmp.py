"""Financial Modeling Prep: the current /stable API or the legacy /api/v3 one (FMP_API)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from urllib.parse import quote as urlquote

from services.common.json_value import JSON
from services.market_data.models import Bar, Quote
from services.market_data.providers.http import HttpReply, HttpUpstream
from services.market_data.providers.parsing import check_date, integer, number
from services.market_data.upstream_errors import (
    SymbolNotFoundError,
    UpstreamAuthError,
    UpstreamBadResponseError,
    UpstreamRateLimitedError,
)

NAME = "fmp"
# Symbols per batch-quote call: FMP documents no limit; this keeps URLs short.
BATCH_SIZE = 100


class FmpProvider:
    """Quotes and daily bars from FMP.

    Both APIs answer quotes as a JSON array; an empty array means FMP does not
    know the symbol. They differ in the change field's name (stable:
    `changePercentage`, v3: `changesPercentage`) and in how history is wrapped.
    """

    name = NAME

    def __init__(
        self,
        http: HttpUpstream,
        api_key: str,
        api: str,
        today: Callable[[], dt.date],
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if api not in ("stable", "v3"):
            raise ValueError(f"FMP api must be stable or v3, got {api!r}")
        self._http = http
        self._key = api_key
        self._api = api
        self._today = today
        self.batch_size = batch_size

    async def quote(self, symbol: str, time_limit: float) -> Quote:
        if self._api == "stable":
            path, params = "/stable/quote", {"symbol": symbol}
        else:
            path, params = f"/api/v3/quote/{urlquote(symbol, safe='')}", {}
        items = self._quote_items(await self._get(path, params, time_limit))
        if not items:
            raise SymbolNotFoundError(f"unknown symbol {symbol}: FMP has no quote for it")
        return self._quote(items[0], symbol)

    async def quotes(self, symbols: Sequence[str], time_limit: float) -> dict[str, Quote]:
        """Quotes of many symbols, `batch_size` per call; unknown symbols are left out.

        stable: /stable/batch-quote?symbols=A,B; v3: /api/v3/quote/A,B. Both
        answer an array of the same quote objects as the one-symbol path.
        """
        chunks = [
            list(symbols[i : i + self.batch_size]) for i in range(0, len(symbols), self.batch_size)
        ]
        replies = await asyncio.gather(*(self._batch(chunk, time_limit) for chunk in chunks))
        return {quote.symbol: quote for reply in replies for quote in reply}

    async def _batch(self, symbols: list[str], time_limit: float) -> list[Quote]:
        joined = ",".join(symbols)
        if self._api == "stable":
            path, params = "/stable/batch-quote", {"symbols": joined}
        else:
            path, params = f"/api/v3/quote/{urlquote(joined, safe=',')}", {}
        items = self._quote_items(await self._get(path, params, time_limit))
        return [self._quote(item, "") for item in items]

    def _quote_items(self, reply: HttpReply) -> list[dict[str, JSON]]:
        body = self._checked(reply)
        if not isinstance(body, list):
            raise UpstreamBadResponseError("fmp quote response is not a JSON array")
        if not all(isinstance(item, dict) for item in body):
            raise UpstreamBadResponseError("fmp quote array holds a non-object")
        return [item for item in body if isinstance(item, dict)]

    def _quote(self, item: dict[str, JSON], symbol: str) -> Quote:
        price = number(item, "price", NAME, required=True)
        previous = number(item, "previousClose", NAME)
        pct_key = "changePercentage" if self._api == "stable" else "changesPercentage"
        if pct_key not in item:  # tolerate the other API's spelling
            pct_key = "changesPercentage" if pct_key == "changePercentage" else "changePercentage"
        change = number(item, "change", NAME) if "change" in item else price - previous
        return Quote(
            symbol=str(item.get("symbol") or symbol),
            name=str(item.get("name") or ""),
            price=price,
            change=change,
            change_percent=number(item, pct_key, NAME),
            open=number(item, "open", NAME),
            day_high=number(item, "dayHigh", NAME),
            day_low=number(item, "dayLow", NAME),
            previous_close=previous,
            volume=integer(item, "volume", NAME),
            timestamp=number(item, "timestamp", NAME),
        )

    async def history(self, symbol: str, days: int, time_limit: float) -> list[Bar]:
        if self._api == "stable":
            # Ask only for the window we need (plus weekends and holidays); the
            # full series is five years.
            today = self._today()
            start = today - dt.timedelta(days=days * 7 // 5 + 10)
            path = "/stable/historical-price-eod/full"
            params = {"symbol": symbol, "from": start.isoformat(), "to": today.isoformat()}
            body = self._checked(await self._get(path, params, time_limit))
            rows = body
        else:
            path = f"/api/v3/historical-price-full/{urlquote(symbol, safe='')}"
            body = self._checked(await self._get(path, {"timeseries": str(days)}, time_limit))
            # v3 wraps the bars: {"symbol": ..., "historical": [...]}; unknown is {}.
            rows = body.get("historical", []) if isinstance(body, dict) else body
        if not isinstance(rows, list):
            raise UpstreamBadResponseError("fmp history response has no array of bars")
        if not rows:
            raise SymbolNotFoundError(f"unknown symbol {symbol}: FMP has no daily history for it")
        bars = [_bar(row) for row in rows]
        bars.sort(key=lambda bar: bar.date)  # FMP sends newest first
        return bars[-days:]

    async def _get(self, path: str, params: dict[str, str], time_limit: float) -> HttpReply:
        return await self._http.get_json(path, {**params, "apikey": self._key}, time_limit)

    def _checked(self, reply: HttpReply) -> JSON:
        """The body of a usable answer; FMP's error bodies become status codes."""
        body = reply.body
        message = body.get("Error Message") if isinstance(body, dict) else None
        text = self._http.redact(str(message or ""))
        lowered = text.lower()
        if reply.status == 429 or "limit reach" in lowered:
            raise UpstreamRateLimitedError(f"FMP rate limit reached: {text or 'HTTP 429'}")
        if reply.status == 401 or "api key" in lowered or "apikey" in lowered:
            raise UpstreamAuthError(
                "FMP rejected the server's API key; an operator must set a valid FMP_API_KEY"
            )
        if reply.status in (402, 403):
            raise UpstreamAuthError(f"FMP refused the request for this plan: {text or 'HTTP 403'}")
        if message is not None:
            raise UpstreamBadResponseError(f"FMP error: {text}")
        if reply.status != 200 or body is None:
            raise UpstreamBadResponseError(f"FMP answered HTTP {reply.status} without usable JSON")
        return body


def _bar(row: JSON) -> Bar:
    if not isinstance(row, dict):
        raise UpstreamBadResponseError("fmp history holds a non-object bar")
    return Bar(
        date=check_date(row.get("date"), NAME),
        open=number(row, "open", NAME),
        high=number(row, "high", NAME),
        low=number(row, "low", NAME),
        close=number(row, "close", NAME, required=True),
        volume=integer(row, "volume", NAME),
    )
