"""SingleFlight: concurrent callers of one key share one execution."""

from __future__ import annotations

import asyncio

import pytest

from services.sector.singleflight import SingleFlight


async def test_concurrent_calls_share_one_execution() -> None:
    flight: SingleFlight[int] = SingleFlight()
    release = asyncio.Event()
    calls = 0

    async def work() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    waiters = [asyncio.create_task(flight.do("k", work)) for _ in range(10)]
    await asyncio.sleep(0)
    assert flight.in_flight == 1
    release.set()
    assert await asyncio.gather(*waiters) == [42] * 10
    assert calls == 1
    assert flight.in_flight == 0


async def test_an_error_reaches_every_waiter_and_the_next_call_runs_again() -> None:
    flight: SingleFlight[int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise RuntimeError("upstream down")

    waiters = [asyncio.create_task(flight.do("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)

    async def ok() -> int:
        return 7

    assert await flight.do("k", ok) == 7


async def test_one_waiter_cancelled_does_not_cancel_the_shared_work() -> None:
    flight: SingleFlight[str] = SingleFlight()
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    first = asyncio.create_task(flight.do("k", work))
    second = asyncio.create_task(flight.do("k", work))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == "done"


async def test_different_keys_run_independently() -> None:
    flight: SingleFlight[str] = SingleFlight()

    async def named(name: str) -> str:
        return name

    a, b = await asyncio.gather(
        flight.do("a", lambda: named("a")), flight.do("b", lambda: named("b"))
    )
    assert (a, b) == ("a", "b")
