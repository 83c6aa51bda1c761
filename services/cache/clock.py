"""The clock the cache reads: wall time for expiry, monotonic time for durations."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Where the store gets the time; tests pass a clock they can move."""

    def now(self) -> float:
        """Wall-clock Unix seconds (expiry times are stored in these)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for durations)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
