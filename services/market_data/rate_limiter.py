"""A client-side token bucket per provider, so we stay inside the provider's rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from services.market_data.deadline import Clock, Deadline
from services.market_data.upstream_errors import UpstreamRateLimitedError

Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """`rate` tokens per second up to `capacity`; each upstream call takes one.

    A caller that finds the bucket empty reserves the next token and waits for
    it (reservations keep arrival order and never over-spend), unless the wait
    would outlast its deadline or `max_wait`: then it is refused with
    RESOURCE_EXHAUSTED at once, so the caller can serve a stale copy instead.
    """

    def __init__(
        self,
        provider: str,
        rate: float,
        capacity: float,
        *,
        max_wait: float = 10.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        self.provider = provider
        self.rate = rate
        self.capacity = capacity
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait_needed(self) -> float:
        """Seconds until a token is free for a new caller (0 when one is free now)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    async def acquire(self, deadline: Deadline) -> float:
        """Take a token, waiting for it if allowed; returns the seconds waited."""
        wait = self.wait_needed()
        allowed = deadline.cap(self.max_wait)
        if wait > allowed:
            raise UpstreamRateLimitedError(
                f"{self.provider} rate limit reached ({self.rate * 60:g}/min); "
                f"retry in {wait:.1f}s",
                retry_after=wait,
            )
        # Reserve now (the balance may go negative) so concurrent callers queue
        # behind us instead of all waking for the same token.
        self._tokens -= 1
        if wait > 0:
            await self._sleep(wait)
        return wait
