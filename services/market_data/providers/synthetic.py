"""The offline provider: deterministic quotes, bars and headlines from a seeded hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from collections.abc import Callable

from services.market_data.models import Article, Bar, Quote
from services.market_data.nyse_calendar import NEW_YORK, NyseCalendar
from services.market_data.providers.catalog import CATALOG, Listing
from services.market_data.upstream_errors import SymbolNotFoundError

# The market clock, Unix seconds.
Now = Callable[[], float]

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


def end_of_day(day: dt.date) -> float:
    """The last second of `day` in New York: MARKET_SYNTHETIC_DATE's fixed "now"."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=NEW_YORK).timestamp()


class SyntheticProvider:
    """Plausible, deterministic market data with no network.

    The close of a symbol on a date is a pure function of both (a slow trend
    plus seeded daily noise), so any window of bars is consistent with any
    other. Sessions follow the NYSE calendar, judged at `now()` (the market
    clock), and nothing is reported from after "now": during a session the
    quote is of "now", on the way from the day's open to its close; outside
    one it is the last completed session's close, history always ends
    with the last completed session, and no article is stamped after "now".
    """

    name = "synthetic"

    def __init__(self, now: Now, calendar: NyseCalendar) -> None:
        self._now = now
        self._calendar = calendar

    @classmethod
    def for_date(cls, day: dt.date, calendar: NyseCalendar | None = None) -> SyntheticProvider:
        """As of the end of `day` (MARKET_SYNTHETIC_DATE): that day's close is the latest."""
        stamp = end_of_day(day)
        return cls(lambda: stamp, calendar or NyseCalendar())

    def _previous(self, day: dt.date) -> dt.date:
        return self._calendar.session_on_or_before(day - dt.timedelta(days=1)).date

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
        prev = self._close(symbol, listing, self._previous(day))
        rng = _rng(symbol, day.isoformat(), "bar")
        open_ = round(prev * math.exp(rng.gauss(0.0, _DAILY_SIGMA / 3)), 2)
        high = round(max(open_, close) * (1 + abs(rng.gauss(0.0, 0.006))), 2)
        low = round(min(open_, close) * (1 - abs(rng.gauss(0.0, 0.006))), 2)
        typical = 2e6 + (_seed(symbol, "volume") % 60_000_000)
        volume = int(typical * math.exp(rng.gauss(0.0, 0.3)))
        return Bar(day.isoformat(), open_, high, low, close, volume)

    def bars(self, symbol: str, end: dt.date, days: int) -> list[Bar]:
        """The `days` session bars ending at `end` (if it trades), oldest first."""
        listing = self._listing(symbol)
        sessions = self._calendar.sessions_ending(end, days)
        return [self._bar(symbol, listing, s.date) for s in sessions]

    async def quote(self, symbol: str, time_limit: float) -> Quote:
        listing = self._listing(symbol)
        market = self._calendar.state_at(self._now())
        session = market.current or market.last_completed
        bar = self._bar(symbol, listing, session.date)
        prev = self._close(symbol, listing, self._previous(session.date))
        price, high, low, volume = bar.close, bar.high, bar.low, bar.volume
        stamp = session.closes_at
        if market.current is not None:
            # Part way through the session: as far from the open towards the close.
            done = (market.at - session.opens_at) / (session.closes_at - session.opens_at)
            price = round(bar.open + (bar.close - bar.open) * done, 2)
            high = round(max(bar.open, price) + (bar.high - max(bar.open, bar.close)) * done, 2)
            low = round(min(bar.open, price) - (min(bar.open, bar.close) - bar.low) * done, 2)
            volume = int(bar.volume * done)
            stamp = market.at
        change = round(price - prev, 2)
        return Quote(
            symbol=symbol,
            name=listing.name,
            price=price,
            change=change,
            change_percent=round(change / prev * 100, 4),
            open=bar.open,
            day_high=high,
            day_low=low,
            previous_close=prev,
            volume=volume,
            timestamp=stamp,
        )

    async def history(self, symbol: str, days: int, time_limit: float) -> list[Bar]:
        last = self._calendar.state_at(self._now()).last_completed
        return self.bars(symbol, last.date, days)

    async def news(self, symbol: str, day: dt.date, limit: int, time_limit: float) -> list[Article]:
        listing = self._listing(symbol)
        rng = _rng(symbol, day.isoformat(), "news")
        start = dt.datetime.combine(day, dt.time(0, 0, tzinfo=dt.UTC)).timestamp()
        now = self._now()
        articles = []
        for i in range(3 + rng.randrange(8)):
            theme = rng.choice(_THEMES)
            move = rng.choice(("rise", "slip", "climb", "fall", "hold steady"))
            title = rng.choice(_HEADLINES).format(
                name=listing.name, symbol=symbol, theme=theme, move=move
            )
            article = Article(
                title=title,
                source=rng.choice(_SOURCES),
                url=f"https://news.example.com/{symbol.lower()}/{day.isoformat()}/{i + 1}",
                published_at=start + rng.randrange(86_400),
                summary=f"Synthetic coverage of {listing.name} ({symbol}) and {theme}.",
            )
            # An article of later today is not published yet. Each keeps its own
            # stamp (drawn before this check), so it appears unchanged once it is.
            if article.published_at <= now:
                articles.append(article)
        articles.sort(key=lambda a: a.published_at, reverse=True)
        return articles[:limit]
