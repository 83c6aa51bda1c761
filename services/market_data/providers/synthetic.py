"""The offline provider: deterministic quotes, bars and headlines from a seeded hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from collections.abc import Callable

from services.market_data.models import Article, Bar, Quote
from services.market_data.providers.catalog import CATALOG, Listing
from services.market_data.providers.parsing import CLOSE_UTC
from services.market_data.upstream_errors import SymbolNotFoundError

Today = Callable[[], dt.date]

_DAILY_SIGMA = 0.012

_SOURCES = ("Reuters", "Bloomberg", "MarketWatch", "CNBC", "Financial Times", "Barron's")
_HEADLINES = (
    "{name} shares {move} as investors weigh {theme}",
    "Analysts revisit {name} outlook amid {theme}",
    "{symbol}: what the options market says about {theme}",
    "{name} draws attention after {theme}",
    "Why {symbol} {move} today",
    "{name} in focus as traders price in {theme}",
    "Fund managers adjust {symbol} positions ahead of {theme}",
    "{name} volume spikes on {theme}",
)
_THEMES = (
    "interest-rate expectations",
    "quarterly earnings",
    "sector rotation",
    "a shift in guidance",
    "inflation data",
    "supply-chain news",
    "a regulatory update",
    "dividend plans",
)


def _seed(*parts: object) -> int:
    # hashlib, not hash(): str hashes differ between processes (PYTHONHASHSEED).
    text = "|".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _rng(*parts: object) -> random.Random:
    return random.Random(_seed(*parts))


def last_trading_day(day: dt.date) -> dt.date:
    """`day` itself on a weekday, else the Friday before (holidays are not modelled)."""
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def previous_trading_day(day: dt.date) -> dt.date:
    return last_trading_day(day - dt.timedelta(days=1))


class SyntheticProvider:
    """Plausible, deterministic market data with no network.

    The close of a symbol on a date is a pure function of both (a slow trend
    plus seeded daily noise), so any window of bars is consistent with any
    other, and the quote is the last trading day's bar: history's last close
    equals the quote's price, and its previous close is the bar before.
    """

    name = "synthetic"

    def __init__(self, today: Today) -> None:
        self._today = today

    def _listing(self, symbol: str) -> Listing:
        listing = CATALOG.get(symbol)
        if listing is None:
            raise SymbolNotFoundError(
                f"unknown symbol {symbol}: the synthetic provider does not list it"
            )
        return listing

    def _close(self, symbol: str, listing: Listing, day: dt.date) -> float:
        t = day.toordinal()
        phase = _rng(symbol, "phase")
        trend = 0.12 * math.sin(2 * math.pi * t / 251 + phase.uniform(0, 2 * math.pi))
        wobble = 0.04 * math.sin(2 * math.pi * t / 37 + phase.uniform(0, 2 * math.pi))
        noise = _DAILY_SIGMA * _rng(symbol, day.isoformat(), "close").gauss(0.0, 1.0)
        return round(listing.base_price * math.exp(trend + wobble + noise), 2)

    def _bar(self, symbol: str, listing: Listing, day: dt.date) -> Bar:
        close = self._close(symbol, listing, day)
        prev = self._close(symbol, listing, previous_trading_day(day))
        rng = _rng(symbol, day.isoformat(), "bar")
        open_ = round(prev * math.exp(rng.gauss(0.0, _DAILY_SIGMA / 3)), 2)
        high = round(max(open_, close) * (1 + abs(rng.gauss(0.0, 0.006))), 2)
        low = round(min(open_, close) * (1 - abs(rng.gauss(0.0, 0.006))), 2)
        typical = 2e6 + (_seed(symbol, "volume") % 60_000_000)
        volume = int(typical * math.exp(rng.gauss(0.0, 0.3)))
        return Bar(day.isoformat(), open_, high, low, close, volume)

    def bars(self, symbol: str, end: dt.date, days: int) -> list[Bar]:
        """The `days` trading-day bars ending at `end`, oldest first."""
        listing = self._listing(symbol)
        dates: list[dt.date] = []
        day = last_trading_day(end)
        while len(dates) < days:
            dates.append(day)
            day = previous_trading_day(day)
        return [self._bar(symbol, listing, d) for d in reversed(dates)]

    async def quote(self, symbol: str, time_limit: float) -> Quote:
        listing = self._listing(symbol)
        day = last_trading_day(self._today())
        bar = self._bar(symbol, listing, day)
        prev = self._close(symbol, listing, previous_trading_day(day))
        change = round(bar.close - prev, 2)
        stamp = dt.datetime.combine(day, CLOSE_UTC).timestamp()
        return Quote(
            symbol=symbol,
            name=listing.name,
            price=bar.close,
            change=change,
            change_percent=round(change / prev * 100, 4),
            open=bar.open,
            day_high=bar.high,
            day_low=bar.low,
            previous_close=prev,
            volume=bar.volume,
            timestamp=stamp,
        )

    async def history(self, symbol: str, days: int, time_limit: float) -> list[Bar]:
        return self.bars(symbol, self._today(), days)

    async def news(self, symbol: str, day: dt.date, limit: int, time_limit: float) -> list[Article]:
        listing = self._listing(symbol)
        rng = _rng(symbol, day.isoformat(), "news")
        start = dt.datetime.combine(day, dt.time(0, 0, tzinfo=dt.UTC)).timestamp()
        articles = []
        for i in range(3 + rng.randrange(8)):
            theme = rng.choice(_THEMES)
            move = rng.choice(("rise", "slip", "climb", "fall", "hold steady"))
            title = rng.choice(_HEADLINES).format(
                name=listing.name, symbol=symbol, theme=theme, move=move
            )
            articles.append(
                Article(
                    title=title,
                    source=rng.choice(_SOURCES),
                    url=f"https://news.example.com/{symbol.lower()}/{day.isoformat()}/{i + 1}",
                    published_at=start + rng.randrange(86_400),
                    summary=f"Synthetic coverage of {listing.name} ({symbol}) and {theme}.",
                )
            )
        articles.sort(key=lambda a: a.published_at, reverse=True)
        return articles[:limit]
