"""Duplicate call suppression: concurrent calls for one key share one execution.

groupcache's singleflight for asyncio. The first caller for a key starts the
call as a task (a flight); callers arriving while it runs share its result or
error instead of starting their own. Only calls that overlap in time merge: a
caller that missed the cache just before a flight ended starts a second one,
so a flight's function should re-check the cache first (the race
CacheAside._refresh describes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Group(Generic[T]):
    """Flights by key: `do` waits for the key's flight, `start` only makes sure one runs."""

    def __init__(self, on_merge: Callable[[], None] | None = None) -> None:
        self._flights: dict[str, asyncio.Task[T]] = {}
        self._on_merge = on_merge
        # Calls that joined a flight already running (they made no call of their own).
        self.merged = 0

    def __len__(self) -> int:
        """The number of flights running."""
        return len(self._flights)

    def in_flight(self, key: str) -> bool:
        """Whether a flight for `key` is running."""
        return key in self._flights

    def start(self, key: str, fn: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """The flight of `key`, started with `fn` unless one runs; the caller need not wait.

        The group holds the task until it ends (asyncio keeps only weak references
        to tasks) and retrieves its error, so a flight nobody waits for (a
        background refresh) is neither collected early nor logged as unretrieved.
        """
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self._flights[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        else:
            self.merged += 1
            if self._on_merge is not None:
                self._on_merge()
        return task

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn` once for all concurrent callers of `key`; all get its result or error."""
        # shield: one caller giving up (its deadline, a cancelled RPC) must not
        # cancel the flight the other callers are waiting on.
        return await asyncio.shield(self.start(key, fn))

    def _forget(self, key: str, task: asyncio.Task[T]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone away
