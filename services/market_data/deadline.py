"""A request's deadline on the monotonic clock, handed down from the gRPC context."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    """An absolute monotonic instant by which the answer is due (None: no deadline)."""

    at: float | None
    clock: Clock = time.monotonic

    @classmethod
    def after(cls, seconds: float | None, clock: Clock = time.monotonic) -> Deadline:
        """The deadline `seconds` from now; None means unbounded."""
        return cls(None if seconds is None else clock() + seconds, clock)

    @classmethod
    def for_rpc(
        cls,
        time_remaining: float | None,
        budget: float,
        clock: Clock = time.monotonic,
    ) -> Deadline:
        """The caller's deadline capped at our budget, minus a margin to answer in.

        The margin lets us serve a stale copy or a clear error before the
        caller's own deadline turns our answer into DEADLINE_EXCEEDED.
        """
        seconds = budget if time_remaining is None else min(time_remaining, budget)
        margin = min(0.05, seconds * 0.1)
        return cls(clock() + max(seconds - margin, 0.0), clock)

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None when unbounded."""
        if self.at is None:
            return None
        return max(self.at - self.clock(), 0.0)

    def cap(self, seconds: float) -> float:
        """`seconds`, shortened to what is left of the deadline."""
        left = self.remaining()
        return seconds if left is None else min(seconds, left)
