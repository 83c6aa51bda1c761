"""What callers send is checked, with messages that say how to fix it."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from services.common.errors import ServiceError
from services.market_data.validation import (
    parse_days,
    parse_news_date,
    parse_news_limit,
    parse_symbol,
    parse_symbols,
)

TODAY = dt.date(2025, 1, 15)


@pytest.mark.parametrize(
    ("raw", "symbol"),
    [("aapl", "AAPL"), (" BRK.B ", "BRK.B"), ("^gspc", "^GSPC"), ("BF-B", "BF-B"), ("X", "X")],
)
def test_symbols_are_uppercased(raw: str, symbol: str) -> None:
    assert parse_symbol(raw) == symbol


@pytest.mark.parametrize("raw", ["", "  ", "AB CD", "TOOLONGSYMB", "A/B", "A:B", "ÄPPLE", "A\nB"])
def test_bad_symbols_are_invalid_argument(raw: str) -> None:
    with pytest.raises(ServiceError) as caught:
        parse_symbol(raw)
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message.startswith("symbol:")


def test_symbol_lists_accept_comma_lists_and_are_limited() -> None:
    assert parse_symbols(["AAPL,MSFT", "SPY", " , "], 10) == ["AAPL", "MSFT", "SPY"]
    with pytest.raises(ServiceError, match="at least one"):
        parse_symbols([], 10)
    with pytest.raises(ServiceError, match="at most 3 symbols per request, got 4"):
        parse_symbols(["A,B,C,D"], 3)


def test_days_default_to_30_and_stay_within_a_year() -> None:
    assert parse_days(0) == 30
    assert parse_days(1) == 1
    assert parse_days(365) == 365
    for bad in (-1, 366):
        with pytest.raises(ServiceError, match="days: must be between 1 and 365"):
            parse_days(bad)


def test_news_dates() -> None:
    assert parse_news_date("", TODAY) == TODAY
    assert parse_news_date("2024-12-31", TODAY) == dt.date(2024, 12, 31)
    assert parse_news_date("2025-01-16", TODAY) == dt.date(2025, 1, 16)  # time-zone slack
    with pytest.raises(ServiceError, match="date: expected YYYY-MM-DD"):
        parse_news_date("15/01/2025", TODAY)
    with pytest.raises(ServiceError, match="in the future"):
        parse_news_date("2025-02-01", TODAY)


def test_news_limits() -> None:
    assert parse_news_limit(0) == 10
    assert parse_news_limit(100) == 100
    with pytest.raises(ServiceError, match="limit: must be between 1 and 100"):
        parse_news_limit(101)
