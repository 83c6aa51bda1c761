"""TTL rules: 0 or absent means the default; negative or above the maximum is refused."""

from __future__ import annotations

import math

from services.common.errors import ServiceError, invalid_argument


class TtlPolicy:
    """Resolves a requested TTL to the one applied, in whole seconds."""

    def __init__(self, default: int = 3600, maximum: int = 30 * 86_400) -> None:
        if not 1 <= default <= maximum:
            raise ValueError("the default TTL must be between 1 and the maximum")
        self.default = default
        self.maximum = maximum

    def resolve(self, ttl_seconds: int, field: str = "ttl_seconds") -> int:
        """The TTL to apply; ServiceError INVALID_ARGUMENT naming the bounds."""
        if ttl_seconds == 0:
            return self.default
        if ttl_seconds < 0 or ttl_seconds > self.maximum:
            raise self._out_of_range(ttl_seconds, field)
        return ttl_seconds

    def _out_of_range(self, ttl_seconds: int, field: str) -> ServiceError:
        return invalid_argument(
            f"{field} {ttl_seconds} is out of range: use 1 to {self.maximum} seconds "
            f"({self.maximum / 86_400:g} days), or 0 for the default {self.default}",
            field,
        )


def remaining_seconds(expires_at: float, now: float) -> int:
    """Whole seconds left of a live entry, rounded up so a live entry never shows 0."""
    return max(1, math.ceil(expires_at - now))
