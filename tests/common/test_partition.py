"""The split/merge helper: items grouped by key, parts run together, results in request order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.common.partition import merge, run_parts, split, split_run_merge


def test_split_groups_indexes_by_key_in_order_of_first_appearance() -> None:
    groups = split(["b", "a", "b", "c", "a", "b"])
    assert list(groups) == ["b", "a", "c"]
    assert groups == {"b": [0, 2, 5], "a": [1, 4], "c": [3]}
    assert split([]) == {}


def test_merge_puts_each_result_back_at_its_index() -> None:
    parts: list[tuple[Sequence[int], Sequence[str]]] = [([1, 3], ["B", "D"]), ([0, 2], ["A", "C"])]
    assert merge(4, parts) == ["A", "B", "C", "D"]
    assert merge(0, []) == []


def test_merge_refuses_a_part_answering_the_wrong_number_of_items() -> None:
    with pytest.raises(ValueError, match="a part of 2 items answered 1"):
        merge(2, [([0, 1], ["only one"])])


def test_merge_refuses_parts_that_leave_an_item_unanswered() -> None:
    with pytest.raises(ValueError, match="answered 1 items of 2"):
        merge(2, [([0], ["A"])])


async def test_run_parts_runs_the_parts_together_and_answers_in_job_order() -> None:
    started: list[str] = []
    both = asyncio.Event()

    async def part(name: str) -> str:
        started.append(name)
        if len(started) == 2:
            both.set()
        # Each part waits for the other to have started: run one after the
        # other, the first would never finish.
        await asyncio.wait_for(both.wait(), timeout=30)
        return name.upper()

    assert await run_parts([part("x"), part("y")]) == ["X", "Y"]
    assert await run_parts([part("z")]) == ["Z"]
    assert await run_parts([]) == []


async def test_run_parts_finishes_every_part_before_raising_the_first_failure() -> None:
    slow_done = asyncio.Event()

    async def fails(message: str) -> int:
        raise RuntimeError(message)

    async def slow() -> int:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        slow_done.set()
        return 1

    with pytest.raises(RuntimeError, match="first"):
        await run_parts([slow(), fails("first"), fails("second")])
    # The failure surfaced only once the slow part had finished.
    assert slow_done.is_set()


async def test_split_run_merge_answers_in_request_order_with_one_run_per_key() -> None:
    runs: list[tuple[str, list[int]]] = []
    keys = ["p2", "p1", "p2", "p3", "p1"]
    items = ["a", "b", "c", "d", "e"]

    async def run(key: str, indexes: list[int]) -> list[str]:
        runs.append((key, indexes))
        if key == "p1":
            await asyncio.sleep(0)  # finishes after the others: order comes from indexes
        return [f"{key}:{items[i]}" for i in indexes]

    answers = await split_run_merge(keys, run)
    assert answers == ["p2:a", "p1:b", "p2:c", "p3:d", "p1:e"]
    assert sorted(runs) == [("p1", [1, 4]), ("p2", [0, 2]), ("p3", [3])]
