"""Alpha Vantage: GLOBAL_QUOTE and TIME_SERIES_DAILY over /query, string-typed fields."""

from __future__ import annotations

from services.common.json_value import JSON
from services.market_data.models import Bar, Quote
from services.market_data.providers.catalog import CATALOG
from services.market_data.providers.http import HttpUpstream
from services.market_data.providers.parsing import check_date, close_timestamp, integer, number
from services.market_data.upstream_errors import (
    SymbolNotFoundError,
    UpstreamAuthError,
    UpstreamBadResponseError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)

NAME = "alphavantage"
# Alpha Vantage's compact output holds the last 100 bars; more needs "full".
_COMPACT_BARS = 100
_RATE_WORDS = ("rate limit", "call frequency", "requests per day", "per minute", "per day")


class AlphaVantageProvider:
    """Quotes and daily bars from Alpha Vantage.

    Alpha Vantage answers HTTP 200 even for errors: a rate limit arrives as a
    `Note` or `Information` body, a bad key or bad call as `Error Message`,
    and an unknown symbol as an empty `{"Global Quote": {}}`.
    """

    name = NAME

    def __init__(self, http: HttpUpstream, api_key: str) -> None:
        self._http = http
        self._key = api_key

    async def quote(self, symbol: str, time_limit: float) -> Quote:
        body = await self._query("GLOBAL_QUOTE", symbol, {}, time_limit)
        item = body.get("Global Quote")
        if not isinstance(item, dict):
            raise UpstreamBadResponseError(
                "alphavantage GLOBAL_QUOTE response lacks 'Global Quote'"
            )
        if not item:
            raise SymbolNotFoundError(f"unknown symbol {symbol}: Alpha Vantage has no quote for it")
        day = item.get("07. latest trading day")
        listing = CATALOG.get(symbol)
        return Quote(
            symbol=str(item.get("01. symbol") or symbol),
            # GLOBAL_QUOTE carries no company name; use ours when we know it.
            name=listing.name if listing else "",
            price=number(item, "05. price", NAME, required=True),
            change=number(item, "09. change", NAME),
            change_percent=number(item, "10. change percent", NAME),
            open=number(item, "02. open", NAME),
            day_high=number(item, "03. high", NAME),
            day_low=number(item, "04. low", NAME),
            previous_close=number(item, "08. previous close", NAME),
            volume=integer(item, "06. volume", NAME),
            timestamp=close_timestamp(day, NAME) if isinstance(day, str) and day else 0.0,
        )

    async def history(self, symbol: str, days: int, time_limit: float) -> list[Bar]:
        size = "compact" if days <= _COMPACT_BARS else "full"
        body = await self._query("TIME_SERIES_DAILY", symbol, {"outputsize": size}, time_limit)
        series = body.get("Time Series (Daily)")
        if not isinstance(series, dict):
            raise UpstreamBadResponseError(
                "alphavantage TIME_SERIES_DAILY response lacks 'Time Series (Daily)'"
            )
        if not series:
            raise SymbolNotFoundError(f"unknown symbol {symbol}: Alpha Vantage has no daily series")
        bars = [_bar(day, row) for day, row in series.items()]
        bars.sort(key=lambda bar: bar.date)
        return bars[-days:]

    async def _query(
        self, function: str, symbol: str, extra: dict[str, str], time_limit: float
    ) -> dict[str, JSON]:
        params = {"function": function, "symbol": symbol, **extra, "apikey": self._key}
        reply = await self._http.get_json("/query", params, time_limit)
        body = reply.body
        if reply.status == 429:
            raise UpstreamRateLimitedError("Alpha Vantage rate limit reached (HTTP 429)", 60.0)
        if not isinstance(body, dict):
            raise UpstreamBadResponseError(
                f"alphavantage answered HTTP {reply.status} without a JSON object"
            )
        self._raise_for_message(body, function, symbol)
        if reply.status != 200:
            raise UpstreamBadResponseError(f"alphavantage answered HTTP {reply.status}")
        return body

    def _raise_for_message(self, body: dict[str, JSON], function: str, symbol: str) -> None:
        for field in ("Note", "Information", "Error Message"):
            if field not in body:
                continue
            text = self._http.redact(str(body[field]))[:300]
            lowered = text.lower()
            if field == "Note" or any(word in lowered for word in _RATE_WORDS):
                raise UpstreamRateLimitedError(f"Alpha Vantage rate limit reached: {text}", 60.0)
            if "apikey" in lowered or ("api key" in lowered and "invalid" in lowered):
                raise UpstreamAuthError(
                    "Alpha Vantage rejected the server's API key; an operator must set a valid "
                    "ALPHAVANTAGE_API_KEY"
                )
            if field == "Error Message" and "invalid api call" in lowered:
                # What Alpha Vantage says for a symbol it does not list.
                raise SymbolNotFoundError(
                    f"unknown symbol {symbol}: Alpha Vantage rejects {function} for it"
                )
            raise UpstreamUnavailableError(
                f"Alpha Vantage declined the request: {text}", outcome="rejected", transient=False
            )


def _bar(day: str, row: JSON) -> Bar:
    if not isinstance(row, dict):
        raise UpstreamBadResponseError("alphavantage daily series holds a non-object bar")
    return Bar(
        date=check_date(day, NAME),
        open=number(row, "1. open", NAME),
        high=number(row, "2. high", NAME),
        low=number(row, "3. low", NAME),
        close=number(row, "4. close", NAME, required=True),
        volume=integer(row, "5. volume", NAME),
    )
