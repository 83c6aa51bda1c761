"""Singleflight: overlapping calls for one key share one execution."""

from __future__ import annotations

import asyncio

import pytest

from services.market_data.singleflight import Group


async def test_concurrent_calls_for_one_key_run_once_and_share_the_result() -> None:
    release = asyncio.Event()
    runs = 0

    async def load() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    merged: list[int] = []
    group: Group[int] = Group(on_merge=lambda: merged.append(1))
    waiters = [asyncio.ensure_future(group.do("k", load)) for _ in range(50)]
    await asyncio.sleep(0)  # let every waiter join the flight
    assert group.in_flight("k")
    release.set()
    assert await asyncio.gather(*waiters) == [42] * 50
    assert runs == 1
    assert group.merged == 49 and len(merged) == 49
    assert not group.in_flight("k")


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
    release = asyncio.Event()
    runs = 0

    async def fail() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        raise ValueError("upstream down")

    group: Group[int] = Group()
    waiters = [asyncio.ensure_future(group.do("k", fail)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    with pytest.raises(ValueError):
        await group.do("k", fail)
    assert runs == 2


async def test_a_cancelled_waiter_does_not_cancel_the_shared_call() -> None:
    release = asyncio.Event()

    async def load() -> str:
        await release.wait()
        return "done"

    group: Group[str] = Group()
    leader = asyncio.ensure_future(group.do("k", load))
    follower = asyncio.ensure_future(group.do("k", load))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    release.set()
    assert await follower == "done"
    assert leader.cancelled()
