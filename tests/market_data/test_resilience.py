"""Retries, the provider breaker and the rate limiter around real HTTP calls to the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from prometheus_client import CollectorRegistry

from harness.fakes.upstream import FakeUpstream
from services.market_data.breaker import BreakerState, CircuitBreaker
from services.market_data.deadline import Deadline
from services.market_data.metrics import ENDPOINTS, MarketMetrics
from services.market_data.models import Quote
from services.market_data.providers.fmp import FmpProvider
from services.market_data.providers.http import HttpSessions, HttpUpstream
from services.market_data.rate_limiter import TokenBucket
from services.market_data.resilience import ProviderGuard, RetryPolicy
from services.market_data.upstream_errors import UpstreamError
from tests.market_data.conftest import TODAY, FakeClock


@pytest.fixture
async def provider(upstream: FakeUpstream) -> AsyncIterator[FmpProvider]:
    sessions = HttpSessions()
    http = HttpUpstream("fmp", upstream.url, [upstream.api_key], sessions)
    yield FmpProvider(http, upstream.api_key, "stable", lambda: TODAY)
    await sessions.close()


class Harness:
    """A guard over the FMP adapter, with its metrics on a fresh registry."""

    def __init__(
        self,
        provider: FmpProvider,
        clock: FakeClock,
        *,
        attempts: int = 3,
        failures: int = 5,
        limiter: TokenBucket | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.metrics = MarketMetrics(self.registry)
        self.metrics.initialize_provider("fmp", ENDPOINTS)
        self.clock = clock
        self.slept: list[float] = []
        self.breaker = CircuitBreaker(
            "fmp",
            failures,
            30.0,
            clock=clock,
            on_transition=lambda _old, new: self.metrics.breaker_moved("fmp", new),
        )
        self.guard = ProviderGuard(
            "fmp",
            breaker=self.breaker,
            limiter=limiter,
            retry=RetryPolicy(attempts=attempts, base_seconds=0.2, max_seconds=1.0),
            metrics=self.metrics,
            sleep=self._sleep,
        )
        self.provider = provider

    async def _sleep(self, seconds: float) -> None:
        # Backoff passes on the fake clock: no real waiting, and the sleeps are visible.
        self.slept.append(seconds)
        self.clock.advance(seconds)

    async def quote(self, symbol: str = "AAPL", seconds: float | None = 10.0) -> Quote:
        deadline = Deadline.after(seconds, self.clock)
        return await self.guard.call(
            "quote", lambda t: self.provider.quote(symbol, min(t, 1.0)), deadline
        )

    def count(self, outcome: str) -> float:
        labels = {"provider": "fmp", "endpoint": "quote", "outcome": outcome}
        return self.registry.get_sample_value("market_upstream_requests_total", labels) or 0.0

    def state(self) -> BreakerState:
        return self.breaker.state

    def gauge(self) -> float:
        value = self.registry.get_sample_value("market_breaker_state", {"provider": "fmp"})
        return -1.0 if value is None else value


async def test_transient_failures_are_retried_with_growing_backoff(
    upstream: FakeUpstream, provider: FmpProvider, clock: FakeClock
) -> None:
    harness = Harness(provider, clock)
    upstream.set_fault("http503", "fmp", times=2)
    quote = await harness.quote()
    assert quote.symbol == "AAPL"
    assert upstream.calls("fmp.stable.quote") == 3
    assert (harness.count("unavailable"), harness.count("ok")) == (2, 1)
    assert len(harness.slept) == 2
    assert 0.2 <= harness.slept[0] <= 0.4, "initial backoff plus up to base of jitter"
    assert harness.slept[1] >= 0.4, "the backoff doubles"


async def test_permanent_failures_are_not_retried(
    upstream: FakeUpstream, provider: FmpProvider, clock: FakeClock
) -> None:
    harness = Harness(provider, clock)
    upstream.set_fault("bad_key", "fmp")
    with pytest.raises(UpstreamError) as caught:
        await harness.quote()
    assert caught.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert upstream.calls("fmp") == 1
    assert harness.slept == []


async def test_retries_stop_after_the_configured_attempts(
    upstream: FakeUpstream, provider: FmpProvider, clock: FakeClock
) -> None:
    harness = Harness(provider, clock, attempts=3)
    upstream.set_fault("http500", "fmp")
    with pytest.raises(UpstreamError) as caught:
        await harness.quote()
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert upstream.calls("fmp") == 3


async def test_retries_stop_when_the_backoff_would_pass_the_deadline(
    upstream: FakeUpstream, provider: FmpProvider, clock: FakeClock
) -> None:
    harness = Harness(provider, clock, attempts=5)
    upstream.set_fault("http500", "fmp")
    with pytest.raises(UpstreamError):
        # 0.15 s left: the first backoff (>= 0.2 s) would overrun it.
        await harness.quote(seconds=0.15)
    assert upstream.calls("fmp") == 1
    assert harness.slept == []


async def test_the_breaker_opens_fails_fast_half_opens_and_closes(
    upstream: FakeUpstream, provider: FmpProvider, clock: FakeClock
) -> None:
    harness = Harness(provider, clock, attempts=1, failures=3)
    upstream.set_fault("http500", "fmp")
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await harness.quote()
    assert harness.state() is BreakerState.OPEN
    assert harness.gauge() == 2
    # Open: fail fast, the upstream is not called.
    with pytest.raises(UpstreamError) as caught:
        await harness.quote()
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert "circuit breaker open" in caught.value.message
    assert upstream.calls("fmp") == 3
    # After the reset time one trial goes through; the upstream has recovered.
    upstream.clear_faults()
    clock.advance(30)
    assert harness.gauge() == 2, "the gauge moves when the breaker is next consulted"
    await harness.quote()
    assert upstream.calls("fmp") == 4
    assert harness.state() is BreakerState.CLOSED
    assert harness.gauge() == 0
    transitions = {
        state: harness.registry.get_sample_value(
            "market_breaker_transitions_total", {"provider": "fmp", "state": state}
        )
        for state in ("open", "half_open", "closed")
    }
    assert transitions == {"open": 1, "half_open": 1, "closed": 1}
    rejections = harness.registry.get_sample_value(
        "market_breaker_rejections_total", {"provider": "fmp"}
    )
    assert rejections == 1


async def test_not_found_and_bad_keys_do_not_open_the_breaker(
    upstream: FakeUpstream, provider: FmpProvider, clock: FakeClock
) -> None:
    harness = Harness(provider, clock, attempts=1, failures=2)
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await harness.quote("NOPE")
    upstream.set_fault("bad_key", "fmp")
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await harness.quote()
    assert harness.state() is BreakerState.CLOSED


async def test_the_rate_limiter_refuses_before_calling_the_upstream(
    upstream: FakeUpstream, provider: FmpProvider, clock: FakeClock
) -> None:
    limiter = TokenBucket("fmp", 1 / 60, 1, max_wait=0.0, clock=clock)
    harness = Harness(provider, clock, limiter=limiter)
    await harness.quote()
    with pytest.raises(UpstreamError) as caught:
        await harness.quote()
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert upstream.calls("fmp") == 1
    refused = harness.registry.get_sample_value(
        "market_rate_limiter_rejections_total", {"provider": "fmp"}
    )
    assert refused == 1
    clock.advance(60)
    await harness.quote()
    assert upstream.calls("fmp") == 2
