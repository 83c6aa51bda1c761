"""The interfaces every provider implements."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from services.market_data.models import Article, Bar, Quote


class PriceProvider(Protocol):
    """Quotes and daily bars. `time_limit` bounds this one call, in seconds."""

    name: str

    async def quote(self, symbol: str, time_limit: float) -> Quote:
        """The latest quote; SymbolNotFoundError when the provider does not know the symbol."""
        ...

    async def history(self, symbol: str, days: int, time_limit: float) -> list[Bar]:
        """The last `days` daily bars, oldest first."""
        ...


class NewsProvider(Protocol):
    """Headlines about a symbol on a day."""

    name: str

    async def news(self, symbol: str, day: dt.date, limit: int, time_limit: float) -> list[Article]:
        """Up to `limit` articles published on `day` (UTC), newest first."""
        ...
