"""The quotes one GetQuotes must load, fetched together in as few upstream calls as possible."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from services.market_data.deadline import Deadline
from services.market_data.models import Quote
from services.market_data.providers.base import BatchQuotes
from services.market_data.resilience import ProviderGuard
from services.market_data.upstream_errors import SymbolNotFoundError


class QuoteBatch:
    """One batch fetch shared by the per-symbol loads of a GetQuotes.

    Each symbol still goes through the cache-aside path on its own (its own
    singleflight, cache write and stale-if-error); the first of them to reach
    the upstream starts one batch call for every symbol the cache could not
    answer, and the others take their quote from its result.
    """

    def __init__(
        self,
        provider: BatchQuotes,
        provider_name: str,
        guard: ProviderGuard,
        symbols: Iterable[str],
    ) -> None:
        self._provider = provider
        self._name = provider_name
        self._guard = guard
        self.symbols = frozenset(symbols)
        self._task: asyncio.Task[dict[str, Quote]] | None = None

    async def quote(self, symbol: str, deadline: Deadline) -> Quote:
        """`symbol`'s quote from the shared batch call (started on first need)."""
        if self._task is None:
            wanted = sorted(self.symbols)
            self._task = asyncio.ensure_future(
                self._guard.call(
                    "quote", lambda timeout: self._provider.quotes(wanted, timeout), deadline
                )
            )
            # Every waiter retrieves the error; this keeps an unawaited one quiet.
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())
        # Shielded: one symbol's flight giving up must not cancel the others' call.
        quotes = await asyncio.shield(self._task)
        found = quotes.get(symbol)
        if found is None:
            raise SymbolNotFoundError(f"unknown symbol {symbol}: {self._name} has no quote for it")
        return found
