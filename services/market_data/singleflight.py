"""Duplicate call suppression: concurrent calls for one key share one execution."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Group(Generic[T]):
    """groupcache's singleflight for asyncio.

    The first caller for a key (the leader) starts the call as a task; callers
    arriving while it runs wait for the same result instead of starting their
    own. The task is shielded: a waiter that gives up (its RPC cancelled) does
    not cancel the call the others wait for. Only calls that overlap in time
    are merged, so the function should re-check the cache first (see
    CacheAside._refresh for the race that prevents).
    """

    def __init__(self, on_merge: Callable[[], None] | None = None) -> None:
        self._flights: dict[str, asyncio.Task[T]] = {}
        self._on_merge = on_merge
        # Calls merged into another's flight (they made no call of their own).
        self.merged = 0

    def in_flight(self, key: str) -> bool:
        return key in self._flights

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn` once for all concurrent callers of `key`; all get its result or error."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self._flights[key] = task
            task.add_done_callback(lambda t: self._forget(key, t))
        else:
            self.merged += 1
            if self._on_merge is not None:
                self._on_merge()
        return await asyncio.shield(task)

    def _forget(self, key: str, task: asyncio.Task[T]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        # Retrieve the exception so a flight whose waiters all left does not log
        # "exception was never retrieved".
        if not task.cancelled():
            task.exception()
