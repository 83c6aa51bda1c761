"""The interfaces every provider implements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class BatchQuotes(Protocol):
    """A price provider that answers many quotes per upstream call (FMP)."""

    async def quotes(self, symbols: Sequence[str], time_limit: float) -> dict[str, Quote]:
        """Quotes by symbol; symbols the provider does not know are absent."""
        ...


class NewsProvider(Protocol):
    """Headlines about a symbol on a day."""

    name: str

    async def news(self, symbol: str, day: dt.date, limit: int, time_limit: float) -> list[Article]:
        """Up to `limit` articles published on `day` (UTC), newest first."""
        ...
