"""Deterministic market data and the exact JSON bodies FMP, Alpha Vantage and NewsAPI send."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from typing import Any

JSON = Any

DEFAULT_SYMBOLS: dict[str, str] = {
    "XLB": "Materials Select Sector SPDR Fund",
    "XLC": "Communication Services Select Sector SPDR Fund",
    "XLE": "Energy Select Sector SPDR Fund",
    "XLF": "Financial Select Sector SPDR Fund",
    "XLI": "Industrial Select Sector SPDR Fund",
    "XLK": "Technology Select Sector SPDR Fund",
    "XLP": "Consumer Staples Select Sector SPDR Fund",
    "XLRE": "Real Estate Select Sector SPDR Fund",
    "XLU": "Utilities Select Sector SPDR Fund",
    "XLV": "Health Care Select Sector SPDR Fund",
    "XLY": "Consumer Discretionary Select Sector SPDR Fund",
    "SPY": "SPDR S&P 500 ETF Trust",
    "QQQ": "Invesco QQQ Trust",
    "AAPL": "Apple Inc.",
    "MSFT": "Microsoft Corporation",
    "GOOGL": "Alphabet Inc.",
    "AMZN": "Amazon.com, Inc.",
    "NVDA": "NVIDIA Corporation",
    "META": "Meta Platforms, Inc.",
    "TSLA": "Tesla, Inc.",
    "JPM": "JPMorgan Chase & Co.",
    "IBM": "International Business Machines Corporation",
    "BRK.B": "Berkshire Hathaway Inc.",
}

# Error and rate-limit bodies, as the real APIs send them.
FMP_BAD_KEY = {
    "Error Message": "Invalid API KEY. Feel free to create a Free API Key or visit "
    "https://site.financialmodelingprep.com/faqs?search=why-is-my-api-key-invalid "
    "for more information."
}
FMP_LIMIT = {
    "Error Message": "Limit Reach . Please upgrade your plan or visit our documentation for "
    "more details at https://site.financialmodelingprep.com/"
}
AV_BAD_KEY = {
    "Error Message": "the parameter apikey is invalid or missing. Please claim your free API "
    "key on (https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
}
AV_NOTE = {
    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per "
    "minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you "
    "would like to target a higher API call frequency."
}
AV_INFORMATION = {
    "Information": "Thank you for using Alpha Vantage! Our standard API rate limit is 25 "
    "requests per day. Please subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."
}
AV_INVALID_CALL = {
    "Error Message": "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
}
NEWS_BAD_KEY = {
    "status": "error",
    "code": "apiKeyInvalid",
    "message": "Your API key is invalid or incorrect. Check your key, or go to "
    "https://newsapi.org to create a free API key.",
}
NEWS_LIMIT = {
    "status": "error",
    "code": "rateLimited",
    "message": "You have been rate limited. Back off for a while before trying the request again.",
}


def _unit(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def trading_days(end: dt.date, count: int) -> list[dt.date]:
    """The last `count` weekdays up to `end`, oldest first."""
    days: list[dt.date] = []
    day = end
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= dt.timedelta(days=1)
    return list(reversed(days))


@dataclass(frozen=True)
class FakeBar:
    """One bar the fake serves (numbers already rounded as the APIs send them)."""

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: int


class MarketBook:
    """The fake's market: a price path per symbol, pure functions of symbol and date."""

    def __init__(self, today: dt.date | None = None) -> None:
        self.names = dict(DEFAULT_SYMBOLS)
        self._today = today

    def today(self) -> dt.date:
        day = self._today or dt.datetime.now(dt.UTC).date()
        while day.weekday() >= 5:
            day -= dt.timedelta(days=1)
        return day

    def knows(self, symbol: str) -> bool:
        return symbol in self.names

    def close(self, symbol: str, day: dt.date) -> float:
        base = 20 + 480 * _unit(symbol, "base")
        wave = 0.08 * math.sin(day.toordinal() / 9 + 6 * _unit(symbol, "phase"))
        noise = 0.02 * (_unit(symbol, day.isoformat()) - 0.5)
        return round(base * (1 + wave + noise), 2)

    def bar(self, symbol: str, day: dt.date) -> FakeBar:
        close = self.close(symbol, day)
        prev = self.close(symbol, day - dt.timedelta(days=1))
        spread = 0.01 * close
        return FakeBar(
            date=day.isoformat(),
            open=prev,
            high=round(max(prev, close) + spread, 2),
            low=round(min(prev, close) - spread, 2),
            close=close,
            volume=int(1_000_000 + 9_000_000 * _unit(symbol, day.isoformat(), "v")),
        )

    def bars(self, symbol: str, count: int, end: dt.date | None = None) -> list[FakeBar]:
        """`count` bars ending at `end` (default today), oldest first."""
        return [self.bar(symbol, d) for d in trading_days(end or self.today(), count)]

    def quote(self, symbol: str) -> dict[str, JSON]:
        """The canonical quote; tests compare what an adapter parsed against this."""
        before, last = self.bars(symbol, 2)
        change = round(last.close - before.close, 2)
        return {
            "symbol": symbol,
            "name": self.names[symbol],
            "price": last.close,
            "change": change,
            "change_percent": round(change / before.close * 100, 4),
            "open": last.open,
            "day_high": last.high,
            "day_low": last.low,
            "previous_close": before.close,
            "volume": last.volume,
            "date": last.date,
        }

    def fmp_quote(self, symbol: str, stable: bool) -> list[JSON]:
        q = self.quote(symbol)
        stamp = int(
            dt.datetime.combine(
                dt.date.fromisoformat(q["date"]), dt.time(20, 0), dt.UTC
            ).timestamp()
        )
        item = {
            "symbol": symbol,
            "name": q["name"],
            "price": q["price"],
            ("changePercentage" if stable else "changesPercentage"): q["change_percent"],
            "change": q["change"],
            "volume": q["volume"],
            "dayLow": q["day_low"],
            "dayHigh": q["day_high"],
            "yearHigh": round(q["price"] * 1.3, 2),
            "yearLow": round(q["price"] * 0.7, 2),
            "marketCap": int(q["price"] * 1e9),
            "priceAvg50": q["previous_close"],
            "priceAvg200": q["previous_close"],
            "exchange": "NASDAQ",
            "open": q["open"],
            "previousClose": q["previous_close"],
            "timestamp": stamp,
        }
        if not stable:
            item.update({"avgVolume": q["volume"], "eps": 5.9, "pe": 30.1})
        return [item]

    def av_quote(self, symbol: str) -> JSON:
        q = self.quote(symbol)
        return {
            "Global Quote": {
                "01. symbol": symbol,
                "02. open": f"{q['open']:.4f}",
                "03. high": f"{q['day_high']:.4f}",
                "04. low": f"{q['day_low']:.4f}",
                "05. price": f"{q['price']:.4f}",
                "06. volume": str(q["volume"]),
                "07. latest trading day": q["date"],
                "08. previous close": f"{q['previous_close']:.4f}",
                "09. change": f"{q['change']:.4f}",
                "10. change percent": f"{q['change_percent']:.4f}%",
            }
        }

    def av_daily(self, symbol: str, full: bool) -> JSON:
        bars = self.bars(symbol, 300 if full else 100)
        series = {
            b.date: {
                "1. open": f"{b.open:.4f}",
                "2. high": f"{b.high:.4f}",
                "3. low": f"{b.low:.4f}",
                "4. close": f"{b.close:.4f}",
                "5. volume": str(b.volume),
            }
            for b in reversed(bars)  # newest first, as Alpha Vantage sends them
        }
        meta = {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            "3. Last Refreshed": bars[-1].date,
            "4. Output Size": "Full size" if full else "Compact",
            "5. Time Zone": "US/Eastern",
        }
        return {"Meta Data": meta, "Time Series (Daily)": series}

    def fmp_bar(self, symbol: str, bar: FakeBar) -> dict[str, JSON]:
        return {
            "symbol": symbol,
            "date": bar.date,
            "open": bar.open,
            "high": bar.high,
            "low": bar.low,
            "close": bar.close,
            "volume": bar.volume,
            "change": round(bar.close - bar.open, 2),
            "changePercent": round((bar.close - bar.open) / bar.open * 100, 4),
            "vwap": round((bar.high + bar.low + bar.close) / 3, 2),
        }

    def articles(self, query: str, day: dt.date, count: int = 5) -> list[JSON]:
        """NewsAPI articles (newest first) plus one "[Removed]" placeholder, as NewsAPI does."""
        name = self.names.get(query, query)
        items: list[JSON] = []
        for i in range(count):
            hour = 22 - 3 * i
            items.append(
                {
                    "source": {"id": None, "name": f"Wire {i + 1}"},
                    "author": "Fake Reporter",
                    "title": f"{name} headline {i + 1} on {day.isoformat()}",
                    "description": f"What moved {query} ({i + 1}).",
                    "url": f"https://news.test/{query.lower()}/{day.isoformat()}/{i + 1}",
                    "urlToImage": None,
                    "publishedAt": f"{day.isoformat()}T{hour:02d}:15:00Z",
                    "content": "...",
                }
            )
        items.insert(
            2,
            {
                "source": {"id": None, "name": "[Removed]"},
                "title": "[Removed]",
                "description": "[Removed]",
                "url": "https://removed.com",
                "publishedAt": "1970-01-01T00:00:00Z",
            },
        )
        return items
