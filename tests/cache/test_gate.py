"""The input gate: one at a time per prefix, arrival order, bounded queue."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from services.cache.store.gate import PrefixGates
from services.common.errors import ServiceError
from tests.support.polling import eventually


async def test_one_prefix_runs_one_at_a_time_in_arrival_order() -> None:
    gates = PrefixGates()
    order: list[int] = []
    active = 0
    most_active = 0

    async def op(i: int) -> None:
        nonlocal active, most_active
        async with gates.hold("stock"):
            active += 1
            most_active = max(most_active, active)
            await asyncio.sleep(0)  # yield: others must still wait their turn
            order.append(i)
            active -= 1

    await asyncio.gather(*(op(i) for i in range(50)))
    assert order == list(range(50))
    assert most_active == 1
    assert len(gates) == 0  # idle gates are dropped


async def test_other_prefixes_proceed_while_one_is_held() -> None:
    gates = PrefixGates()
    release = asyncio.Event()
    holding = asyncio.Event()

    async def hold_stock() -> None:
        async with gates.hold("stock"):
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold_stock())
    await holding.wait()
    async with asyncio.timeout(10):
        async with gates.hold("news"):
            pass  # not blocked by "stock"
    assert not holder.done()
    release.set()
    await holder


async def test_a_full_queue_is_resource_exhausted() -> None:
    gates = PrefixGates(max_queue=2)
    release = asyncio.Event()
    started = asyncio.Event()

    async def hold() -> None:
        async with gates.hold("stock"):
            started.set()
            await release.wait()

    first = asyncio.create_task(hold())
    await started.wait()
    second = asyncio.create_task(hold())
    await eventually(lambda: gates.depth("stock") == 2)
    with pytest.raises(ServiceError) as caught:
        async with gates.hold("stock"):
            pass
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "CACHE_MAX_PREFIX_QUEUE=2" in caught.value.message
    release.set()
    await asyncio.gather(first, second)
    async with gates.hold("stock"):  # room again
        pass


async def test_hold_all_takes_gates_in_sorted_order_without_deadlock() -> None:
    gates = PrefixGates()
    done: list[str] = []

    async def multi(name: str, prefixes: list[str]) -> None:
        async with gates.hold_all(prefixes):
            await asyncio.sleep(0)
            done.append(name)

    async with asyncio.timeout(10):
        await asyncio.gather(
            *(multi(f"ab{i}", ["a", "b"]) for i in range(10)),
            *(multi(f"ba{i}", ["b", "a"]) for i in range(10)),
        )
    assert len(done) == 20


async def test_a_cancelled_waiter_leaves_the_gate_usable() -> None:
    gates = PrefixGates()
    release = asyncio.Event()
    started = asyncio.Event()

    async def hold() -> None:
        async with gates.hold("p"):
            started.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await started.wait()
    waiter = asyncio.create_task(hold())
    await eventually(lambda: gates.depth("p") == 2)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gates.depth("p") == 1
    release.set()
    await holder
    assert gates.depth("p") == 0


async def test_a_multi_prefix_hold_cancelled_midway_lets_go_of_what_it_took() -> None:
    gates = PrefixGates()
    release = asyncio.Event()
    started = asyncio.Event()

    async def hold_b() -> None:
        async with gates.hold("b"):
            started.set()
            await release.wait()

    async def hold_ab() -> None:
        async with gates.hold_all(["b", "a"]):
            raise AssertionError("must not get both while 'b' is held")

    holder = asyncio.create_task(hold_b())
    await started.wait()
    multi = asyncio.create_task(hold_ab())
    await eventually(lambda: gates.depth("a") == 1 and gates.depth("b") == 2)
    multi.cancel()
    with pytest.raises(asyncio.CancelledError):
        await multi
    assert (gates.depth("a"), gates.depth("b")) == (0, 1)
    async with asyncio.timeout(10), gates.hold("a"):  # "a" was let go
        pass
    release.set()
    await holder
    assert len(gates) == 0


async def test_one_prefix_through_hold_all_keeps_arrival_order_and_the_queue_limit() -> None:
    gates = PrefixGates(max_queue=3)
    order: list[int] = []
    release = asyncio.Event()

    async def op(i: int) -> None:
        async with gates.hold_all(["stock", "stock"]):
            order.append(i)
            await release.wait()

    tasks = [asyncio.create_task(op(i)) for i in range(3)]
    await eventually(lambda: gates.depth("stock") == 3)
    with pytest.raises(ServiceError) as caught:
        async with gates.hold_all(["stock"]):
            pass
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert len(gates) == 0


async def test_internal_upkeep_queues_in_order_but_takes_no_callers_place() -> None:
    gates = PrefixGates(max_queue=2)
    release = asyncio.Event()
    order: list[str] = []

    async def upkeep() -> None:
        # A preload of a just-acquired prefix, stuck behind a slow database.
        async with gates.hold("stock", internal=True):
            order.append("upkeep")
            await release.wait()

    async def caller(name: str) -> None:
        async with gates.hold("stock"):
            order.append(name)

    held = asyncio.create_task(upkeep())
    await eventually(lambda: order == ["upkeep"])
    callers = [asyncio.create_task(caller(f"c{i}")) for i in range(2)]
    await eventually(lambda: gates.depth("stock") == 3)
    # The two callers fill CACHE_MAX_PREFIX_QUEUE by themselves; the upkeep is not counted.
    with pytest.raises(ServiceError) as caught:
        async with gates.hold("stock"):
            pass
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    release.set()
    await asyncio.gather(held, *callers)
    assert order == ["upkeep", "c0", "c1"]  # still one at a time, in arrival order
    assert len(gates) == 0
