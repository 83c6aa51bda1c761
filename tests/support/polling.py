"""Waiting on a condition with a deadline, instead of sleeping: one helper for every test."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

# The first polls come quickly (most conditions hold within milliseconds); later
# ones back off to `every`, so a slow condition checked by RPC does not add load.
FIRST_INTERVAL = 0.001


@overload
async def eventually(
    condition: Callable[[], Awaitable[T | None]],
    within: float = ...,
    what: str = ...,
    every: float = ...,
) -> T: ...


@overload
async def eventually(
    condition: Callable[[], T | None], within: float = ..., what: str = ..., every: float = ...
) -> T: ...


async def eventually(
    condition: Callable[[], Any], within: float = 10.0, what: str = "", every: float = 0.05
) -> Any:
    """Await `condition()` (sync or async) until truthy, yielding to the loop; its value.

    AssertionError naming `what` after `within` seconds.
    """
    deadline = time.monotonic() + within
    interval = FIRST_INTERVAL
    while True:
        result = condition()
        value = await result if inspect.isawaitable(result) else result
        if value:
            return value
        _fail_after(deadline, within, what or repr(condition))
        await asyncio.sleep(interval)
        interval = min(interval * 2, every)


def eventually_blocking(
    condition: Callable[[], T | None], within: float = 10.0, what: str = "", every: float = 0.05
) -> T:
    """`eventually` for code outside an event loop: polls with time.sleep; the truthy value."""
    deadline = time.monotonic() + within
    interval = FIRST_INTERVAL
    while True:
        value = condition()
        if value:
            return value
        _fail_after(deadline, within, what or repr(condition))
        time.sleep(interval)
        interval = min(interval * 2, every)


def _fail_after(deadline: float, within: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise AssertionError(f"not within {within}s: {what}")
