"""Singleflight: overlapping calls for one key share one execution."""

from __future__ import annotations

import asyncio
import gc
from typing import Any, Generic, TypeVar

import pytest

from services.common.singleflight import Group

T = TypeVar("T")


class Gated(Generic[T]):
    """A call that waits for `release`, then returns `result` (or raises `error`); counts runs."""

    def __init__(self, result: T, error: Exception | None = None) -> None:
        self.result = result
        self.error = error
        self.release = asyncio.Event()
        self.runs = 0

    async def __call__(self) -> T:
        self.runs += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.result


async def test_concurrent_calls_for_one_key_run_once_and_share_the_result() -> None:
    load = Gated(42)
    merged: list[int] = []
    group: Group[int] = Group(on_merge=lambda: merged.append(1))
    waiters = [asyncio.ensure_future(group.do("k", load)) for _ in range(50)]
    await asyncio.sleep(0)  # let every waiter join the flight
    assert group.in_flight("k") and len(group) == 1
    load.release.set()
    assert await asyncio.gather(*waiters) == [42] * 50
    assert load.runs == 1
    assert group.merged == 49 and len(merged) == 49
    assert not group.in_flight("k") and len(group) == 0


async def test_different_keys_do_not_merge() -> None:
    group: Group[str] = Group()

    async def echo(value: str) -> str:
        await asyncio.sleep(0)
        return value

    results = await asyncio.gather(
        group.do("a", lambda: echo("a")), group.do("b", lambda: echo("b"))
    )
    assert list(results) == ["a", "b"]
    assert group.merged == 0


async def test_an_error_reaches_every_waiter_and_the_next_call_runs_again() -> None:
    fail = Gated(0, ValueError("upstream down"))
    group: Group[int] = Group()
    waiters = [asyncio.ensure_future(group.do("k", fail)) for _ in range(3)]
    await asyncio.sleep(0)
    fail.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert fail.runs == 1
    with pytest.raises(ValueError):
        await group.do("k", fail)
    assert fail.runs == 2


@pytest.mark.parametrize("cancelled", ["leader", "follower"])
async def test_a_cancelled_waiter_does_not_cancel_the_shared_call(cancelled: str) -> None:
    load = Gated("done")
    group: Group[str] = Group()
    leader = asyncio.ensure_future(group.do("k", load))
    follower = asyncio.ensure_future(group.do("k", load))
    await asyncio.sleep(0)
    gone, stays = (leader, follower) if cancelled == "leader" else (follower, leader)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert group.in_flight("k")
    load.release.set()
    assert await stays == "done"
    assert load.runs == 1


async def test_a_started_flight_runs_to_its_end_without_a_waiter() -> None:
    refresh = Gated("fresh")
    group: Group[str] = Group()
    flight = group.start("k", refresh)  # a background refresh: nobody awaits it
    assert group.start("k", refresh) is flight  # a second start joins, runs nothing new
    assert group.merged == 1
    joined = asyncio.ensure_future(group.do("k", refresh))  # a reader joins the same flight
    await asyncio.sleep(0)
    refresh.release.set()
    assert await joined == "fresh"
    assert refresh.runs == 1
    assert flight.result() == "fresh" and not group.in_flight("k")


async def test_a_failed_flight_nobody_waited_for_is_not_reported_as_unretrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        fail = Gated("", ValueError("upstream down"))
        fail.release.set()
        group: Group[str] = Group()
        flight = group.start("k", fail)
        await asyncio.wait([flight])
        assert not group.in_flight("k")
        del flight
        gc.collect()  # a task with an unretrieved error reports it when collected
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
