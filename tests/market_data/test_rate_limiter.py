"""The token bucket: bursts, waits within the deadline, refusals beyond it."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from services.market_data.deadline import Deadline
from services.market_data.rate_limiter import TokenBucket
from services.market_data.upstream_errors import UpstreamRateLimitedError
from tests.market_data.conftest import FakeClock


def bucket(clock: FakeClock, slept: list[float], *, max_wait: float = 60.0) -> TokenBucket:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    # Alpha Vantage's free tier: 5 calls a minute.
    return TokenBucket("alphavantage", 5 / 60, 5, max_wait=max_wait, clock=clock, sleep=sleep)


async def test_a_burst_up_to_capacity_goes_through_without_waiting(clock: FakeClock) -> None:
    slept: list[float] = []
    limiter = bucket(clock, slept)
    for _ in range(5):
        assert await limiter.acquire(Deadline(None, clock)) == 0.0
    assert slept == []


async def test_the_next_call_waits_for_a_token(clock: FakeClock) -> None:
    slept: list[float] = []
    limiter = bucket(clock, slept)
    for _ in range(5):
        await limiter.acquire(Deadline(None, clock))
    waited = await limiter.acquire(Deadline(None, clock))
    assert waited == pytest.approx(12.0)
    assert slept == [pytest.approx(12.0)]


async def test_concurrent_waiters_queue_one_token_apart(clock: FakeClock) -> None:
    requested: list[float] = []

    async def sleep(seconds: float) -> None:
        # Record but do not move the clock: both waiters are asleep at once.
        requested.append(seconds)

    limiter = TokenBucket("alphavantage", 5 / 60, 5, max_wait=60.0, clock=clock, sleep=sleep)
    for _ in range(5):
        await limiter.acquire(Deadline(None, clock))
    await asyncio.gather(
        limiter.acquire(Deadline(None, clock)), limiter.acquire(Deadline(None, clock))
    )
    assert requested == [pytest.approx(12.0), pytest.approx(24.0)]


async def test_a_wait_past_the_deadline_is_refused_with_resource_exhausted(
    clock: FakeClock,
) -> None:
    slept: list[float] = []
    limiter = bucket(clock, slept)
    for _ in range(5):
        await limiter.acquire(Deadline(None, clock))
    with pytest.raises(UpstreamRateLimitedError) as caught:
        await limiter.acquire(Deadline.after(5.0, clock))
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.retry_after == pytest.approx(12.0)
    assert "5/min" in caught.value.message
    assert slept == []
    # The refused caller reserved nothing: the next token is still 12 s away.
    assert limiter.wait_needed() == pytest.approx(12.0)


async def test_max_wait_bounds_callers_without_a_deadline(clock: FakeClock) -> None:
    slept: list[float] = []
    limiter = bucket(clock, slept, max_wait=10.0)
    for _ in range(5):
        await limiter.acquire(Deadline(None, clock))
    with pytest.raises(UpstreamRateLimitedError):
        await limiter.acquire(Deadline(None, clock))


async def test_tokens_refill_with_time(clock: FakeClock) -> None:
    slept: list[float] = []
    limiter = bucket(clock, slept)
    for _ in range(5):
        await limiter.acquire(Deadline(None, clock))
    clock.advance(60)
    for _ in range(5):
        assert await limiter.acquire(Deadline(None, clock)) == 0.0
