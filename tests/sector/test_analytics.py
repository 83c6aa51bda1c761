"""Performance, relative strength, trend and ranking on hand-made closes."""

from __future__ import annotations

import datetime as dt

import pytest

from services.sector import analytics
from services.sector.analytics import DailyClose, HistoryDigest

SESSION = dt.date(2025, 3, 3)  # a Monday


def business_days_before(session: dt.date, count: int) -> list[dt.date]:
    days: list[dt.date] = []
    day = session
    while len(days) < count:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days[::-1]


def rising_bars(count: int = 70) -> list[DailyClose]:
    """Closes 100, 101, ... on the business days before SESSION (2024-11-25 .. 2025-02-28)."""
    return [
        DailyClose(day, 100.0 + i) for i, day in enumerate(business_days_before(SESSION, count))
    ]


def test_digest_keeps_the_last_63_past_closes_and_the_year_end_close() -> None:
    history = analytics.digest("XLK", rising_bars(), SESSION)
    assert history.closes[0] == 107.0
    assert history.closes[-1] == 169.0
    assert len(history.closes) == 63
    # 2024-12-31 is the 27th business day of the series: close 126.
    assert history.year_base == 126.0


def test_a_bar_of_the_session_itself_is_not_a_past_close() -> None:
    bars = [*rising_bars(), DailyClose(SESSION, 999.0)]
    history = analytics.digest("XLK", bars, SESSION)
    assert history.closes[-1] == 169.0


def test_performance_over_each_period() -> None:
    history = analytics.digest("XLK", rising_bars(), SESSION)
    perf = analytics.performance(200.0, 1.5, history)
    assert perf == {
        "day_1": 1.5,  # the quote's own change percent
        "day_5": 21.2121,  # 200 / 165
        "month_1": 34.2282,  # 200 / 149
        "month_3": 86.9159,  # 200 / 107
        "ytd": 58.7302,  # 200 / 126
    }


def test_a_short_history_uses_its_oldest_close_as_the_base() -> None:
    history = analytics.digest("XLC", rising_bars()[-10:], SESSION)  # closes 160..169
    perf = analytics.performance(176.0, 0.0, history)
    assert perf["day_5"] == pytest.approx(6.6667)  # 176 / 165
    assert perf["month_1"] == 10.0  # 176 / 160, the oldest
    assert perf["month_3"] == 10.0
    assert history.year_base == 160.0  # the history starts inside the year
    assert perf["ytd"] == 10.0


def test_no_history_means_zero_not_an_error() -> None:
    history = analytics.digest("XLC", [], SESSION)
    assert analytics.performance(50.0, 2.0, history) == {
        "day_1": 2.0,
        "day_5": 0.0,
        "month_1": 0.0,
        "month_3": 0.0,
        "ytd": 0.0,
    }


def test_percent_change_without_a_usable_base() -> None:
    assert analytics.percent_change(10.0, None) == 0.0
    assert analytics.percent_change(10.0, 0.0) == 0.0
    assert analytics.percent_change(110.0, 100.0) == pytest.approx(10.0)


def test_relative_strength_is_the_difference_in_points() -> None:
    sector = {"day_1": 1.5, "day_5": 3.0, "month_1": -2.0, "month_3": 10.0, "ytd": 4.25}
    spy = {"day_1": 0.5, "day_5": 4.0, "month_1": -3.5, "month_3": 10.0, "ytd": 1.0}
    assert analytics.relative_strength(sector, spy) == {
        "day_1": 1.0,
        "day_5": -1.0,
        "month_1": 1.5,
        "month_3": 0.0,
        "ytd": 3.25,
    }


def digest_of(closes: list[float]) -> HistoryDigest:
    return HistoryDigest("XLK", SESSION, tuple(closes), closes[0] if closes else None)


@pytest.mark.parametrize(
    ("closes", "price", "month_1", "label"),
    [
        # Price over the 20-session average, 20 over 50, up 34% on the month.
        ([100.0 + i for i in range(63)], 170.0, 34.0, "strong-uptrend"),
        # The same shape but a small monthly gain: an uptrend, not a strong one.
        ([100.0 + 0.01 * i for i in range(63)], 100.7, 0.5, "uptrend"),
        ([200.0 - i for i in range(63)], 130.0, -20.0, "strong-downtrend"),
        ([100.0 - 0.01 * i for i in range(63)], 99.3, -0.5, "downtrend"),
        # Flat: every vote is zero.
        ([100.0] * 63, 100.0, 0.0, "neutral"),
        # The averages still rise, but the price fell below its 20-session average and
        # the month is down: one vote up, two down, net -1 is "neutral".
        ([100.0 + i for i in range(63)], 150.0, -1.0, "neutral"),
    ],
)
def test_trend_labels(closes: list[float], price: float, month_1: float, label: str) -> None:
    assert analytics.trend(price, digest_of(closes), month_1) == label


def test_ranking_is_best_first_with_alphabetical_ties() -> None:
    month_1 = {"XLK": 5.0, "XLE": -3.0, "XLF": 5.0, "XLU": 0.5, "XLB": -7.25}
    ranking = analytics.rank(month_1, top_n=2)
    assert ranking.order == ("XLF", "XLK", "XLU", "XLE", "XLB")
    assert ranking.top == ("XLF", "XLK")
    assert ranking.bottom == ("XLB", "XLE")  # worst first
    assert ranking.rank_of("XLF") == 1
    assert ranking.rank_of("XLB") == 5


def test_digest_round_trips_through_json() -> None:
    history = analytics.digest("XLK", rising_bars(), SESSION)
    assert HistoryDigest.from_json(history.to_json()) == history
