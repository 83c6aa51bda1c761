"""Freshness that follows the trading session, and the clock the session is judged by.

During regular hours data is fresh for its own TTL (MARKET_TTL_QUOTE, ...).
Outside them nothing trades, so it stays fresh until the next session opens,
capped by MARKET_TTL_CLOSED_MAX (late prints and corrections still arrive after
the close). MARKET_NOW pins the clock for demos and tests: the market clock
starts at that instant and runs on at the real rate. Only session decisions and
reported timestamps use it; how old a cached copy is stays measured on the real
clock, so TTLs run out as they would.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.common.config import ConfigError, Env
from services.market_data.nyse_calendar import NEW_YORK, MarketState, NyseCalendar, SessionState

Clock = Callable[[], float]
HOUR = 3600
# A closed market's data is refetched at least this often by default.
DEFAULT_CLOSED_MAX = 4 * HOUR


def parse_market_now(env: Env, name: str = "MARKET_NOW") -> dt.datetime | None:
    """MARKET_NOW as an aware datetime; a time without an offset is New York time."""
    value = env.optional(name)
    if value is None:
        return None
    try:
        pinned = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{name}: expected an ISO-8601 time like 2026-11-27T10:30:00-05:00, got {value!r}"
        ) from None
    if pinned.tzinfo is None:
        pinned = pinned.replace(tzinfo=NEW_YORK)
    return pinned


@dataclass(frozen=True)
class SessionSettings:
    """MARKET_NOW and MARKET_TTL_CLOSED_MAX, shared by MarketDataService and SectorService."""

    now: dt.datetime | None
    closed_max: int = DEFAULT_CLOSED_MAX

    @classmethod
    def from_env(cls, env: Env) -> SessionSettings:
        return cls(
            now=parse_market_now(env),
            closed_max=env.integer(
                "MARKET_TTL_CLOSED_MAX", DEFAULT_CLOSED_MAX, minimum=1, maximum=7 * 24 * HOUR
            ),
        )

    def clock(self, base: Clock = time.time) -> Clock:
        """The market clock: `base`, or MARKET_NOW running on at `base`'s rate from now."""
        if self.now is None:
            return base
        offset = self.now.timestamp() - base()
        return lambda: base() + offset


@dataclass(frozen=True)
class Freshness:
    """How long an answer is fresh, and why (shown in its provenance)."""

    seconds: int
    session: SessionState
    reason: str


class SessionFreshness:
    """Turns a kind of data's TTL into the freshness the current session allows."""

    def __init__(self, calendar: NyseCalendar, clock: Clock, closed_max: int) -> None:
        self._calendar = calendar
        self._clock = clock
        self._closed_max = closed_max

    def market(self) -> MarketState:
        """The market now, on the market clock."""
        return self._calendar.state_at(self._clock())

    def follows_session(self, ttl: int, variable: str) -> Freshness:
        """`ttl` during regular hours; else until the next open, capped."""
        market = self.market()
        if market.state is SessionState.OPEN:
            return Freshness(ttl, market.state, f"regular hours: {variable}")
        until_open = max(math.ceil(market.seconds_to_open), 1)
        opens = dt.datetime.fromtimestamp(market.next_session.opens_at, NEW_YORK)
        why = f"{market.holiday}: " if market.holiday else ""
        reason = f"{why}market closed until {opens.isoformat(timespec='minutes')}"
        if until_open > self._closed_max:
            return Freshness(
                self._closed_max, market.state, f"{reason}, capped by MARKET_TTL_CLOSED_MAX"
            )
        return Freshness(until_open, market.state, reason)

    def fixed(self, ttl: int, variable: str) -> Freshness:
        """`ttl` whatever the session (news)."""
        return Freshness(ttl, self.market().state, f"{variable}, whatever the session")
