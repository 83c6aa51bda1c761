"""Collapse concurrent calls for one key into a single execution (groupcache's singleflight)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Callers of `do(key, fn)` while a call for `key` runs share its result or error."""

    def __init__(self) -> None:
        self._calls: dict[str, asyncio.Task[T]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        task = self._calls.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self._calls[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # shield: one caller giving up (deadline, cancel) must not cancel the
        # shared work the other callers are waiting on.
        return await asyncio.shield(task)

    def _finished(self, key: str, task: asyncio.Task[T]) -> None:
        if self._calls.get(key) is task:
            del self._calls[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone away
