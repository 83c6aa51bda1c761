"""Split a batch by owner or shard, run the parts together, merge in request order.

A batch call (MGet, MSet, WriteBatch) has items that belong to different places:
prefixes, shards, owner nodes. Every layer that fans such a call out does the
same three steps, so they live here once:

- `split(keys)`: item indexes grouped by the key of each item (its prefix, its
  shard, its owner's address), groups in order of first appearance;
- `run_parts(jobs)`: the parts together; every part finishes before the first
  failure is raised, so nothing is left running behind the caller's back (a part
  that succeeded stays done, as with any batch spanning owners);
- `merge(size, parts)`: each part's per-item results put back at their indexes.

`split_run_merge` is the three in a row, for a part that answers per item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar, cast

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


def split(keys: Iterable[K]) -> dict[K, list[int]]:
    """Item indexes by key: groups in order of first appearance, indexes ascending."""
    groups: dict[K, list[int]] = {}
    for index, key in enumerate(keys):
        indexes = groups.get(key)
        if indexes is None:
            groups[key] = [index]
        else:
            indexes.append(index)
    return groups


async def run_parts(jobs: Iterable[Awaitable[R]]) -> list[R]:
    """The jobs' results in job order, run together (a lone job is awaited in place).

    Every job finishes before the first failure (in job order) is raised.
    """
    tasks = list(jobs)
    if len(tasks) == 1:
        return [await tasks[0]]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast("list[R]", results)


def merge(size: int, parts: Iterable[tuple[Sequence[int], Sequence[R]]]) -> list[R]:
    """The results of `size` items in request order, from (indexes, results) per part.

    ValueError when a part answers a different number of items than it was given,
    or when the parts do not answer `size` items in all.
    """
    answers: list[Any] = [None] * size
    answered = 0
    for indexes, results in parts:
        if len(indexes) != len(results):
            raise ValueError(f"a part of {len(indexes)} items answered {len(results)}")
        for index, result in zip(indexes, results, strict=True):
            answers[index] = result
        answered += len(indexes)
    if answered != size:
        raise ValueError(f"the parts answered {answered} items of {size}")
    return cast("list[R]", answers)


async def split_run_merge(
    keys: Sequence[K], run: Callable[[K, list[int]], Awaitable[Sequence[R]]]
) -> list[R]:
    """Split items by `keys`, `run(key, indexes)` per part together, and return the
    parts' per-item results in request order."""
    groups = split(keys)
    results = await run_parts(run(key, indexes) for key, indexes in groups.items())
    return merge(len(keys), zip(groups.values(), results, strict=True))
