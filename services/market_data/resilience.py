"""Around every provider call: breaker, rate limiter, retries with backoff, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from services.market_data.breaker import CircuitBreaker
from services.market_data.deadline import Deadline
from services.market_data.metrics import MarketMetrics
from services.market_data.rate_limiter import Sleep, TokenBucket
from services.market_data.upstream_errors import (
    BreakerOpenError,
    DeadlineExceededError,
    SymbolNotFoundError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How transient upstream failures are retried."""

    attempts: int = 3
    base_seconds: float = 0.2
    max_seconds: float = 2.0
    # Longest single provider call; shortened to what is left of the deadline.
    attempt_timeout: float = 5.0
    # No attempt starts with less than this left of the deadline.
    min_attempt_seconds: float = 0.05


class _StopAtDeadline(stop_base):
    """Stop retrying when the backoff sleep plus a minimal attempt would pass the deadline."""

    def __init__(self, deadline: Deadline, min_attempt: float) -> None:
        self._deadline = deadline
        self._min_attempt = min_attempt

    def __call__(self, retry_state: RetryCallState) -> bool:
        left = self._deadline.remaining()
        return left is not None and left < retry_state.upcoming_sleep + self._min_attempt


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamError) and exc.transient


class ProviderGuard:
    """One provider's circuit breaker, rate limiter and retry policy, with metrics."""

    def __init__(
        self,
        provider: str,
        *,
        breaker: CircuitBreaker,
        limiter: TokenBucket | None,
        retry: RetryPolicy,
        metrics: MarketMetrics,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.breaker = breaker
        self.limiter = limiter
        self.retry = retry
        self._metrics = metrics
        self._sleep = sleep

    async def call(
        self, endpoint: str, fn: Callable[[float], Awaitable[T]], deadline: Deadline
    ) -> T:
        """`fn(timeout)` with retries on transient failures, all within `deadline`."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts)
            | _StopAtDeadline(deadline, self.retry.min_attempt_seconds),
            # Exponential backoff plus up to one base step of jitter, so callers
            # that failed together do not retry in lockstep.
            wait=wait_exponential(multiplier=self.retry.base_seconds, max=self.retry.max_seconds)
            + wait_random(0, self.retry.base_seconds),
            retry=retry_if_exception(_transient),
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(endpoint, fn, deadline)
        raise AssertionError("tenacity stopped without an outcome")  # pragma: no cover

    async def _attempt(
        self, endpoint: str, fn: Callable[[float], Awaitable[T]], deadline: Deadline
    ) -> T:
        left = deadline.remaining()
        if left is not None and left < self.retry.min_attempt_seconds:
            raise DeadlineExceededError(self.provider)
        if not self.breaker.allow():
            self._metrics.breaker_rejections.labels(self.provider).inc()
            raise BreakerOpenError(self.provider, self.breaker.retry_after())
        try:
            if self.limiter is not None:
                waited = await self.limiter.acquire(deadline)
                self._metrics.rate_limit_wait.labels(self.provider).observe(waited)
        except UpstreamRateLimitedError:
            self._metrics.rate_limited.labels(self.provider).inc()
            self.breaker.record_neutral()
            raise
        except BaseException:
            self.breaker.record_neutral()
            raise
        timeout = deadline.cap(self.retry.attempt_timeout)
        capped = timeout < self.retry.attempt_timeout
        outcome = "ok"
        start = time.perf_counter()
        try:
            result = await fn(timeout)
        except UpstreamError as exc:
            outcome = exc.outcome
            self._judge(exc, capped)
            raise
        except BaseException:
            outcome = "cancelled"
            self.breaker.record_neutral()
            raise
        else:
            self.breaker.record_success()
            return result
        finally:
            self._metrics.upstream_requests.labels(self.provider, endpoint, outcome).inc()
            self._metrics.upstream_seconds.labels(self.provider, endpoint).observe(
                time.perf_counter() - start
            )

    def _judge(self, exc: UpstreamError, capped: bool) -> None:
        if isinstance(exc, SymbolNotFoundError | UpstreamRejectedError):
            self.breaker.record_success()  # the provider answered, and sensibly
        elif exc.outcome == "timeout" and capped:
            # The caller's short deadline, not the provider, cut this call off.
            self.breaker.record_neutral()
        elif exc.trips_breaker:
            self.breaker.record_failure()
        else:
            self.breaker.record_neutral()

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        log.info(
            "retrying %s after attempt %d failed: %s",
            self.provider,
            state.attempt_number,
            exc,
            extra={"provider": self.provider, "sleep_seconds": round(state.upcoming_sleep, 3)},
        )
