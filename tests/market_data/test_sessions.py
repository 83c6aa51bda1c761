"""Freshness follows the NYSE session, and nothing is reported from after "now" (MARKET_NOW).

Through the real gRPC server with the synthetic provider; each case pins the
market clock and checks the freshness given, why, and the timestamps served.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from marketcache.v1 import market_data_pb2 as pb
from services.market_data.nyse_calendar import NEW_YORK, NyseCalendar, SessionState
from tests.market_data.conftest import FakeClock, cache_client, running_market
from tests.support.processes import ServiceProcess

HOUR = 3600


def ny(text: str) -> dt.datetime:
    """A New York wall time, YYYY-MM-DD HH:MM."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


@dataclass(frozen=True)
class Case:
    name: str
    now: str  # New York time
    session: str
    quote_fresh_for: float
    reason: str  # a part of the freshness reason
    quote_time: str  # New York time of the quote's timestamp
    last_bar: str
    previous_bar: str


CASES = [
    Case(
        "session-day",
        "2026-11-24 11:00",
        "open",
        60,
        "regular hours: MARKET_TTL_QUOTE",
        "2026-11-24 11:00",  # the quote is of "now"
        "2026-11-23",  # today's bar is not complete yet
        "2026-11-20",  # across the weekend
    ),
    Case(
        "after-the-close",
        "2026-11-24 17:00",
        "closed",
        16.5 * HOUR,  # until 09:30 the next day
        "market closed until 2026-11-25T09:30-05:00",
        "2026-11-24 16:00",
        "2026-11-24",
        "2026-11-23",
    ),
    Case(
        "weekend",
        "2026-11-21 12:00",
        "closed",
        45.5 * HOUR,  # until Monday 09:30
        "market closed until 2026-11-23T09:30-05:00",
        "2026-11-20 16:00",
        "2026-11-20",
        "2026-11-19",
    ),
    Case(
        "exchange-holiday",
        "2026-12-25 12:00",
        "holiday",
        69.5 * HOUR,  # until Monday 28th 09:30
        "Christmas Day: market closed until 2026-12-28T09:30-05:00",
        "2026-12-24 13:00",  # Christmas Eve closed early
        "2026-12-24",
        "2026-12-23",
    ),
    Case(
        "early-close-during",
        "2026-11-27 12:00",
        "open",
        60,
        "regular hours: MARKET_TTL_QUOTE",
        "2026-11-27 12:00",
        "2026-11-25",  # Thanksgiving (26th) did not trade
        "2026-11-24",
    ),
    Case(
        "early-close-after",
        "2026-11-27 14:00",  # after the 13:00 early close
        "closed",
        67.5 * HOUR,  # until Monday 30th 09:30
        "market closed until 2026-11-30T09:30-05:00",
        "2026-11-27 13:00",
        "2026-11-27",
        "2026-11-25",
    ),
    Case(
        "day-after-a-holiday-before-the-open",
        "2026-12-28 09:00",
        "closed",
        0.5 * HOUR,
        "market closed until 2026-12-28T09:30-05:00",
        "2026-12-24 13:00",
        "2026-12-24",
        "2026-12-23",
    ),
    Case(
        "day-after-a-holiday-open",
        "2026-12-28 10:00",
        "open",
        60,
        "regular hours: MARKET_TTL_QUOTE",
        "2026-12-28 10:00",
        "2026-12-24",
        "2026-12-23",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_freshness_and_timestamps_follow_the_session(case: Case) -> None:
    env = {
        "MARKET_NOW": ny(case.now).isoformat(),
        # A week: the cap does not bite here (see the next test).
        "MARKET_TTL_CLOSED_MAX": str(7 * 24 * HOUR),
    }
    async with running_market(env, cache=None) as svc:
        quote = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
        history = await svc.stub.GetHistory(pb.GetHistoryRequest(symbol="AAPL", days=5))
        news = await svc.stub.GetNews(pb.GetNewsRequest(symbol="AAPL"))

    provenance = quote.provenance
    assert provenance.session == case.session
    assert provenance.fresh_for_seconds == pytest.approx(case.quote_fresh_for, abs=2)
    assert case.reason in provenance.freshness_reason
    stamp = quote.quote.timestamp.ToDatetime(tzinfo=dt.UTC)
    assert stamp == pytest.approx(ny(case.quote_time), abs=dt.timedelta(seconds=2))
    assert stamp <= ny(case.now) + dt.timedelta(seconds=2), "never a time after now"

    bars = [bar.date for bar in history.bars]
    assert bars[-2:] == [case.previous_bar, case.last_bar]
    assert history.provenance.session == case.session
    if case.session == "open":
        assert history.provenance.fresh_for_seconds == HOUR  # MARKET_TTL_HISTORY
    else:
        assert history.provenance.fresh_for_seconds == provenance.fresh_for_seconds
    if case.session != "open":
        # Outside the session the quote is the last completed session's close.
        assert quote.quote.price == history.bars[-1].close
    else:
        assert quote.quote.previous_close == history.bars[-1].close

    # News keeps its own TTL whatever the session.
    assert news.provenance.fresh_for_seconds == 6 * HOUR
    assert news.provenance.session == case.session
    assert "MARKET_TTL_NEWS" in news.provenance.freshness_reason


async def test_outside_the_session_freshness_is_capped_by_market_ttl_closed_max() -> None:
    env = {"MARKET_NOW": ny("2026-12-25 12:00").isoformat(), "MARKET_TTL_CLOSED_MAX": "7200"}
    async with running_market(env, cache=None) as svc:
        reply = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="SPY"))
    assert reply.provenance.fresh_for_seconds == 7200
    assert reply.provenance.session == "holiday"
    assert reply.provenance.freshness_reason.endswith("capped by MARKET_TTL_CLOSED_MAX")


async def test_market_now_runs_on_at_the_clocks_rate() -> None:
    # The market clock starts at MARKET_NOW and moves with the process's clock.
    wall = FakeClock(1_900_000_000.0)
    env = {"MARKET_NOW": ny("2026-11-24 15:59").isoformat()}
    async with running_market(env, cache=None, wall_clock=wall) as svc:
        before = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="MSFT"))
        wall.advance(30)
        later = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="MSFT"))
        wall.advance(60)  # now 16:00:30: the session has closed
        closed = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="MSFT"))
    assert later.quote.timestamp.seconds - before.quote.timestamp.seconds == 30
    assert before.provenance.session == later.provenance.session == "open"
    assert closed.provenance.session == "closed"
    close = ny("2026-11-24 16:00")
    assert closed.quote.timestamp.ToDatetime(tzinfo=dt.UTC) == close
    assert closed.provenance.fresh_for_seconds == 4 * HOUR  # the default cap


async def test_a_closed_market_is_served_from_the_cache_until_the_cap(
    cache_process: ServiceProcess,
) -> None:
    wall = FakeClock(1_900_000_000.0)
    env = {"MARKET_NOW": ny("2026-11-21 12:00").isoformat()}  # a Saturday
    async with running_market(env, cache=cache_client(cache_process), wall_clock=wall) as svc:
        first = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="XLK"))
        assert not first.provenance.cached
        wall.advance(3 * HOUR)  # every minute would have refetched before
        held = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="XLK"))
        assert held.provenance.cached and not held.provenance.stale
        assert held.provenance.age_seconds == pytest.approx(3 * HOUR)
        assert held.provenance.session == "closed"
        assert held.provenance.fresh_for_seconds == 4 * HOUR
        wall.advance(4 * HOUR)  # past the cap and the stale-while-revalidate window
        again = await svc.stub.GetQuote(pb.GetQuoteRequest(symbol="XLK"))
        assert not again.provenance.cached
        assert again.quote == first.quote, "nothing traded since Friday's close"


def test_the_calendar_comes_from_the_holidays_library() -> None:
    calendar = NyseCalendar()
    assert calendar.session(dt.date(2026, 12, 25)) is None
    assert calendar.holiday(dt.date(2026, 12, 25)) == "Christmas Day"
    assert calendar.session(dt.date(2026, 7, 3)) is None  # Independence Day observed
    early = calendar.session(dt.date(2026, 11, 27))
    assert early is not None and early.early_close
    assert dt.datetime.fromtimestamp(early.closes_at, NEW_YORK).time() == dt.time(13, 0)
    normal = calendar.session(dt.date(2026, 11, 25))
    assert normal is not None and not normal.early_close
    weekend = calendar.state_at(ny("2026-11-21 12:00").timestamp())
    assert weekend.state is SessionState.CLOSED and weekend.holiday == ""
