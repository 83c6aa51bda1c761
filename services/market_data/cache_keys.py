"""Cache keys, following the seed's conventions (`stock:AAPL`, `news:AAPL:2025-01-15`)."""

from __future__ import annotations

import datetime as dt


def quote_key(symbol: str) -> str:
    """`stock:AAPL`."""
    return f"stock:{symbol}"


def history_key(symbol: str, days: int) -> str:
    """`history:AAPL:30d`."""
    return f"history:{symbol}:{days}d"


def news_key(symbol: str, day: dt.date) -> str:
    """`news:AAPL:2025-01-15`."""
    return f"news:{symbol}:{day.isoformat()}"
