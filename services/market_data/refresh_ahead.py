"""Refreshing hot keys before they expire (XFetch) and stale-while-revalidate.

XFetch (Vattani, Chierichetti, Lowenstein: "Optimal Probabilistic Cache
Stampede Prevention", VLDB 2015): a reader recomputes early when
`-delta * beta * ln(rand()) >= time left`, where delta is what the last
recompute cost. A key read often meets that test shortly before it expires, a
key read rarely almost never does, so only hot keys pay for early refreshes.
Here the early recompute runs in the background, once per key, and the reader
that started it is answered from the cache like everyone else.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.common.config import Env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshPolicy:
    """MARKET_REFRESH_AHEAD_BETA and MARKET_STALE_WHILE_REVALIDATE."""

    # XFetch's beta: above 1 refreshes earlier, 0 turns refresh-ahead off.
    beta: float = 1.0
    # Seconds past freshness during which a stale copy is answered at once
    # while one background refresh runs; 0 turns it off.
    stale_while_revalidate: int = 30

    @classmethod
    def from_env(cls, env: Env) -> RefreshPolicy:
        return cls(
            beta=env.number("MARKET_REFRESH_AHEAD_BETA", cls.beta, minimum=0.0, maximum=100.0),
            stale_while_revalidate=env.integer(
                "MARKET_STALE_WHILE_REVALIDATE",
                cls.stale_while_revalidate,
                minimum=0,
                maximum=24 * 3600,
            ),
        )


def xfetch_due(
    time_left: float, delta: float, beta: float, rand: Callable[[], float] = random.random
) -> bool:
    """Whether a reader should recompute now, `time_left` seconds before expiry."""
    if beta <= 0 or delta <= 0:
        return False
    # 1 - random() lies in (0, 1]: never log(0).
    return -delta * beta * math.log(1.0 - rand()) >= time_left


class BackgroundRefreshes:
    """Refreshes that run after their reader was answered: at most one per key at a time."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[object]] = {}

    def running(self, key: str) -> bool:
        return key in self._tasks

    def start(self, key: str, refresh: Callable[[], Awaitable[object]]) -> bool:
        """Start `refresh` for `key` unless one runs already; True when started."""
        if key in self._tasks:
            return False
        task: asyncio.Task[object] = asyncio.ensure_future(refresh())
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return True

    def _finished(self, key: str, task: asyncio.Task[object]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # The cached copy stays; stale-if-error covers the key if the upstream stays down.
            log.info("background refresh of %s failed: %s", key.partition(":")[0], exc)

    async def close(self) -> None:
        """Cancel what still runs (at shutdown)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
