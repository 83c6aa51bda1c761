"""A circuit breaker (closed -> open -> half-open -> closed) with an injectable clock."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from services.market_data.deadline import Clock


class BreakerState(enum.Enum):
    """Breaker states; the value is what the `market_breaker_state` gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


Transition = Callable[[BreakerState, BreakerState], None]


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; after `reset_seconds`
    lets one trial call through (half-open); its success closes the breaker,
    its failure opens it again for another `reset_seconds`.
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int,
        reset_seconds: float,
        *,
        clock: Clock = time.monotonic,
        on_transition: Transition | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        # Only one trial call at a time while half-open; the rest fail fast.
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose wait is over reports half-open)."""
        if self._state is BreakerState.OPEN and self.retry_after() <= 0.0:
            self._move(BreakerState.HALF_OPEN)
        return self._state

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when not open)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(self._opened_at + self.reset_seconds - self._clock(), 0.0)

    def allow(self) -> bool:
        """May a call go out now? In half-open, True claims the single trial slot."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        """The call reached the upstream and it answered."""
        self._trial_running = False
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """The call failed in a way that suggests the upstream is unhealthy."""
        self._trial_running = False
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold:
            self._open()

    def record_neutral(self) -> None:
        """The call ended without telling us anything (cancelled, rate limited)."""
        self._trial_running = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._move(BreakerState.OPEN)

    def _move(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if old is not new and self._on_transition is not None:
            self._on_transition(old, new)
