"""The NYSE trading calendar: regular sessions, weekends, exchange holidays and early closes.

Holidays and early closes come from the `holidays` library's NYSE financial
calendar (kept current by its maintainers), never from a list of our own. The
library names an early close by its closing time ("... (markets close at
1:00pm)"); we read the time from that name.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import holidays
from holidays.constants import HALF_DAY, PUBLIC

NEW_YORK = ZoneInfo("America/New_York")
REGULAR_OPEN = dt.time(9, 30)
REGULAR_CLOSE = dt.time(16, 0)
# NYSE's early closes are at 1:00 pm; used if the library's name ever lacks the time.
EARLY_CLOSE = dt.time(13, 0)
_CLOSE_AT = re.compile(r"close at (\d{1,2}):(\d{2})\s*([ap])\.?m", re.IGNORECASE)
# Far enough to cross any run of closed days (a long weekend plus a holiday).
_MAX_SCAN_DAYS = 30


class SessionState(enum.StrEnum):
    """What the exchange is doing at an instant."""

    OPEN = "open"  # regular trading hours
    CLOSED = "closed"  # before the open, after the close, or a weekend
    HOLIDAY = "holiday"  # a weekday the exchange does not trade


@dataclass(frozen=True)
class TradingDay:
    """One session: its date and its open and close as Unix seconds."""

    date: dt.date
    opens_at: float
    closes_at: float
    early_close: bool


@dataclass(frozen=True)
class MarketState:
    """The market at one instant: the session state and the sessions around it."""

    at: float
    state: SessionState
    # The session trading now (only when OPEN).
    current: TradingDay | None
    # The next session to open after `at` (tomorrow's when OPEN).
    next_session: TradingDay
    # The last session that closed at or before `at`.
    last_completed: TradingDay
    # The holiday's name (HOLIDAY), else "".
    holiday: str = ""

    @property
    def seconds_to_open(self) -> float:
        """Seconds until the next session opens."""
        return max(self.next_session.opens_at - self.at, 0.0)


class NyseCalendar:
    """NYSE sessions in New York time, from the `holidays` library's NYSE calendar."""

    def __init__(self) -> None:
        # expand=True: years are filled in on first lookup, so no year range to maintain.
        self._closed = holidays.financial_holidays("NYSE", categories=(PUBLIC,))
        self._early = holidays.financial_holidays("NYSE", categories=(HALF_DAY,))

    def holiday(self, day: dt.date) -> str | None:
        """The holiday's name when the exchange is closed on a weekday, else None."""
        if day.weekday() >= 5:
            return None
        name = self._closed.get(day)
        return None if name is None else str(name)

    def session(self, day: dt.date) -> TradingDay | None:
        """The session on `day`, or None on weekends and holidays."""
        if day.weekday() >= 5 or day in self._closed:
            return None
        close = REGULAR_CLOSE
        early_name = self._early.get(day)
        if early_name is not None:
            close = _close_time(str(early_name))
        return TradingDay(
            date=day,
            opens_at=_at(day, REGULAR_OPEN),
            closes_at=_at(day, close),
            early_close=close != REGULAR_CLOSE,
        )

    def session_on_or_after(self, day: dt.date) -> TradingDay:
        for offset in range(_MAX_SCAN_DAYS):
            found = self.session(day + dt.timedelta(days=offset))
            if found is not None:
                return found
        raise LookupError(f"no NYSE session within {_MAX_SCAN_DAYS} days after {day}")

    def session_on_or_before(self, day: dt.date) -> TradingDay:
        for offset in range(_MAX_SCAN_DAYS):
            found = self.session(day - dt.timedelta(days=offset))
            if found is not None:
                return found
        raise LookupError(f"no NYSE session within {_MAX_SCAN_DAYS} days before {day}")

    def sessions_ending(self, day: dt.date, count: int) -> list[TradingDay]:
        """The `count` sessions up to and including `day` (if it trades), oldest first."""
        found: list[TradingDay] = []
        current = day
        while len(found) < count:
            session = self.session_on_or_before(current)
            found.append(session)
            current = session.date - dt.timedelta(days=1)
        found.reverse()
        return found

    def state_at(self, at: float) -> MarketState:
        """The market at Unix time `at`."""
        local = dt.datetime.fromtimestamp(at, NEW_YORK)
        today = local.date()
        session = self.session(today)
        one_day = dt.timedelta(days=1)
        if session is not None and session.opens_at <= at < session.closes_at:
            return MarketState(
                at=at,
                state=SessionState.OPEN,
                current=session,
                next_session=self.session_on_or_after(today + one_day),
                last_completed=self.session_on_or_before(today - one_day),
            )
        if session is not None and at < session.opens_at:
            upcoming, completed = session, self.session_on_or_before(today - one_day)
        elif session is not None:
            upcoming, completed = self.session_on_or_after(today + one_day), session
        else:
            upcoming = self.session_on_or_after(today + one_day)
            completed = self.session_on_or_before(today - one_day)
        holiday = self.holiday(today)
        return MarketState(
            at=at,
            state=SessionState.HOLIDAY if holiday else SessionState.CLOSED,
            current=None,
            next_session=upcoming,
            last_completed=completed,
            holiday=holiday or "",
        )


def _at(day: dt.date, time: dt.time) -> float:
    return dt.datetime.combine(day, time, tzinfo=NEW_YORK).timestamp()


def _close_time(name: str) -> dt.time:
    match = _CLOSE_AT.search(name)
    if match is None:
        return EARLY_CLOSE
    hour, minute, half = int(match[1]), int(match[2]), match[3].lower()
    if half == "p" and hour != 12:
        hour += 12
    return dt.time(hour, minute)
