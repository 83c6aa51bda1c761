"""The circuit breaker: closed -> open -> half-open -> closed, on an injected clock."""

from __future__ import annotations

from services.market_data.breaker import BreakerState, CircuitBreaker
from tests.market_data.conftest import FakeClock


def state(breaker: CircuitBreaker) -> BreakerState:
    # A function, so mypy does not narrow the property between assertions.
    return breaker.state


def make(clock: FakeClock, moves: list[tuple[str, str]]) -> CircuitBreaker:
    return CircuitBreaker(
        "fmp",
        failure_threshold=3,
        reset_seconds=30.0,
        clock=clock,
        on_transition=lambda old, new: moves.append((old.name, new.name)),
    )


def test_opens_after_the_configured_consecutive_failures(clock: FakeClock) -> None:
    moves: list[tuple[str, str]] = []
    breaker = make(clock, moves)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == 30.0
    assert moves == [("CLOSED", "OPEN")]


def test_a_success_resets_the_failure_count(clock: FakeClock) -> None:
    breaker = make(clock, [])
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED


def test_half_opens_after_the_reset_time_and_closes_on_a_successful_trial(
    clock: FakeClock,
) -> None:
    moves: list[tuple[str, str]] = []
    breaker = make(clock, moves)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(29.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow(), "one trial call goes through"
    assert not breaker.allow(), "a second concurrent trial does not"
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    assert moves == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_a_failed_trial_opens_it_again_for_a_full_reset_period(clock: FakeClock) -> None:
    breaker = make(clock, [])
    for _ in range(3):
        breaker.record_failure()
    clock.advance(30)
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_a_neutral_trial_frees_the_slot_without_deciding(clock: FakeClock) -> None:
    breaker = make(clock, [])
    for _ in range(3):
        breaker.record_failure()
    clock.advance(30)
    assert breaker.allow()
    breaker.record_neutral()
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()
