"""Performance, relative strength, trend and ranking: pure functions over closing prices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# Trading sessions back for each period (a month is ~21 sessions, a quarter ~63).
SESSIONS = {"day_5": 5, "month_1": 21, "month_3": 63}
# Past closes a digest keeps: enough for the 3-month base and the 50-session average.
DIGEST_CLOSES = 63
# History to request: a year of sessions plus slack, so the year-to-date base is in it.
HISTORY_DAYS = 260
TOP_N = 3
# 1-month moves at least this large (percent) make a trend "strong".
STRONG_MOVE = 5.0
ROUND_DIGITS = 4

PERIODS = ("day_1", "day_5", "month_1", "month_3", "ytd")


@dataclass(frozen=True)
class DailyClose:
    """One session's closing price."""

    date: dt.date
    close: float


@dataclass(frozen=True)
class HistoryDigest:
    """What performance and trend need from a symbol's history (cached as metrics:<SYMBOL>).

    `closes` are the past sessions' closes, oldest first, before `session`;
    `year_base` is the last close of the previous year (the year-to-date base).
    """

    symbol: str
    session: dt.date
    closes: tuple[float, ...]
    year_base: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "session": self.session.isoformat(),
            "closes": list(self.closes),
            "yearBase": self.year_base,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> HistoryDigest:
        closes = obj["closes"]
        year_base = obj.get("yearBase")
        if not isinstance(closes, list):
            raise ValueError("closes is not a list")
        return cls(
            symbol=str(obj["symbol"]),
            session=dt.date.fromisoformat(str(obj["session"])),
            closes=tuple(float(c) for c in closes),
            year_base=None if year_base is None else float(str(year_base)),
        )


def digest(symbol: str, bars: Iterable[DailyClose], session: dt.date) -> HistoryDigest:
    """Digest the bars before `session` (the quote's date; a bar of that day is excluded)."""
    past = sorted((b for b in bars if b.date < session), key=lambda b: b.date)
    year_start = dt.date(session.year, 1, 1)
    before_year = [b.close for b in past if b.date < year_start]
    # A history that starts inside the year uses its first close as the base.
    year_base = before_year[-1] if before_year else (past[0].close if past else None)
    return HistoryDigest(
        symbol=symbol,
        session=session,
        closes=tuple(b.close for b in past[-DIGEST_CLOSES:]),
        year_base=year_base,
    )


def percent_change(price: float, base: float | None) -> float:
    """(price / base - 1) in percent; 0 when there is no usable base."""
    if base is None or base <= 0:
        return 0.0
    return (price / base - 1.0) * 100.0


def _base(closes: Sequence[float], sessions: int) -> float | None:
    # Shorter histories fall back to their oldest close rather than to nothing.
    if not closes:
        return None
    return closes[-sessions] if len(closes) >= sessions else closes[0]


def performance(price: float, change_percent: float, history: HistoryDigest) -> dict[str, float]:
    """Percent change over each period; 1 day is the quote's own change percent."""
    result = {"day_1": change_percent}
    for period, sessions in SESSIONS.items():
        result[period] = percent_change(price, _base(history.closes, sessions))
    result["ytd"] = percent_change(price, history.year_base)
    return {period: round(value, ROUND_DIGITS) for period, value in result.items()}


def relative_strength(
    sector: Mapping[str, float], benchmark: Mapping[str, float]
) -> dict[str, float]:
    """Sector return minus benchmark return, in percentage points, per period."""
    return {p: round(sector[p] - benchmark[p], ROUND_DIGITS) for p in PERIODS}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def trend(price: float, history: HistoryDigest, month_1: float) -> str:
    """A label from three votes: price vs its 20-session average, the 20 vs 50, the 1-month move.

    All three up with a 1-month gain of at least 5% is "strong-uptrend" (mirrored
    for down); two net votes either way is "uptrend"/"downtrend"; else "neutral".
    """
    series = [*history.closes, price]
    sma20 = _mean(series[-20:])
    sma50 = _mean(series[-50:])
    score = _sign(price - sma20) + _sign(sma20 - sma50) + _sign(month_1)
    if score == 3 and month_1 >= STRONG_MOVE:
        return "strong-uptrend"
    if score == -3 and month_1 <= -STRONG_MOVE:
        return "strong-downtrend"
    if score >= 2:
        return "uptrend"
    if score <= -2:
        return "downtrend"
    return "neutral"


@dataclass(frozen=True)
class Ranking:
    """Sector symbols best first by 1-month performance, with the top and bottom few."""

    order: tuple[str, ...]
    top: tuple[str, ...]
    # Worst first.
    bottom: tuple[str, ...]

    def rank_of(self, symbol: str) -> int:
        return self.order.index(symbol) + 1


def rank(month_1: Mapping[str, float], top_n: int = TOP_N) -> Ranking:
    """Rank by 1-month performance, best first; ties go to the alphabetically first symbol."""
    order = tuple(sorted(month_1, key=lambda s: (-month_1[s], s)))
    return Ranking(order=order, top=order[:top_n], bottom=tuple(reversed(order[-top_n:])))
