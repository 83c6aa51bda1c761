"""Validating what callers send: symbols, day counts, dates, limits."""

from __future__ import annotations

import datetime as dt
import re

from services.common.errors import invalid_argument

SYMBOL_RE = re.compile(r"[A-Z0-9.\-^]{1,10}")
DEFAULT_DAYS = 30
MAX_DAYS = 365
DEFAULT_NEWS_LIMIT = 10
MAX_NEWS_LIMIT = 100


def parse_symbol(raw: str, field: str = "symbol") -> str:
    """Uppercase and check a ticker: 1-10 of A-Z, 0-9, '.', '-', '^'."""
    symbol = raw.strip().upper()
    if not symbol:
        raise invalid_argument(f"{field}: a ticker symbol is required, e.g. AAPL", field)
    if not SYMBOL_RE.fullmatch(symbol):
        shown = raw if len(raw) <= 20 else raw[:20] + "..."
        raise invalid_argument(
            f"{field}: {shown!r} is not a ticker symbol; use 1-10 characters "
            "of A-Z, 0-9, '.', '-' or '^' (e.g. AAPL, BRK.B, ^GSPC)",
            field,
        )
    return symbol


def parse_symbols(raw: list[str], limit: int) -> list[str]:
    """Split comma lists (REST sends ?symbols=A,B) and check the batch size.

    Each entry is returned as given (stripped); invalid ones are reported per
    symbol by the caller rather than failing the whole batch.
    """
    symbols = [part.strip() for item in raw for part in item.split(",") if part.strip()]
    if not symbols:
        raise invalid_argument("symbols: give at least one ticker symbol", "symbols")
    if len(symbols) > limit:
        raise invalid_argument(
            f"symbols: at most {limit} symbols per request, got {len(symbols)}; split the batch",
            "symbols",
        )
    return symbols


def parse_days(days: int) -> int:
    """Trading days of history: 0 means 30; 1..365 allowed."""
    if days == 0:
        return DEFAULT_DAYS
    if not 1 <= days <= MAX_DAYS:
        raise invalid_argument(
            f"days: must be between 1 and {MAX_DAYS} (0 means {DEFAULT_DAYS}), got {days}", "days"
        )
    return days


def parse_news_date(raw: str, today: dt.date) -> dt.date:
    """YYYY-MM-DD, empty meaning today; not in the future."""
    if not raw.strip():
        return today
    try:
        day = dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise invalid_argument(
            f"date: expected YYYY-MM-DD (e.g. 2025-01-15), got {raw!r}", "date"
        ) from None
    # One day of slack: "today" in the caller's time zone may be tomorrow in UTC.
    if day > today + dt.timedelta(days=1):
        raise invalid_argument(f"date: {day.isoformat()} is in the future", "date")
    return day


def parse_news_limit(limit: int) -> int:
    """Articles to return: 0 means 10; 1..100 allowed."""
    if limit == 0:
        return DEFAULT_NEWS_LIMIT
    if not 1 <= limit <= MAX_NEWS_LIMIT:
        raise invalid_argument(
            f"limit: must be between 1 and {MAX_NEWS_LIMIT} (0 means {DEFAULT_NEWS_LIMIT}), "
            f"got {limit}",
            "limit",
        )
    return limit
