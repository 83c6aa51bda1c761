"""Timing loops: per-op latency for a sequential client, ops/s for N concurrent ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

AsyncOp = Callable[[int], Awaitable[object]]
SyncOp = Callable[[int], object]


async def latencies(op: AsyncOp, seconds: float, minimum_ops: int = 20) -> list[float]:
    """Run `op` back to back for `seconds` (at least `minimum_ops` times); microseconds per op."""
    clock = time.perf_counter_ns
    out: list[float] = []
    deadline = clock() + int(seconds * 1e9)
    i = 0
    while True:
        start = clock()
        await op(i)
        end = clock()
        out.append((end - start) / 1_000.0)
        i += 1
        if end >= deadline and i >= minimum_ops:
            return out


def latencies_sync(op: SyncOp, seconds: float, minimum_ops: int = 20) -> list[float]:
    """The blocking counterpart of `latencies`."""
    clock = time.perf_counter_ns
    out: list[float] = []
    deadline = clock() + int(seconds * 1e9)
    i = 0
    while True:
        start = clock()
        op(i)
        end = clock()
        out.append((end - start) / 1_000.0)
        i += 1
        if end >= deadline and i >= minimum_ops:
            return out


async def throughput(op: AsyncOp, concurrency: int, seconds: float) -> float:
    """`concurrency` workers run `op` until `seconds` have passed; completed ops per second.

    The clock stops when the last in-flight op returns, so every counted op is
    fully inside the measured interval.
    """
    clock = time.perf_counter
    start = clock()
    deadline = start + seconds
    counts = [0] * concurrency

    async def worker(w: int) -> None:
        i = w
        done = 0
        while clock() < deadline:
            await op(i)
            i += concurrency
            done += 1
        counts[w] = done

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = clock() - start
    return sum(counts) / elapsed


def throughput_sync(op: SyncOp, seconds: float) -> float:
    """Ops per second of one blocking client."""
    clock = time.perf_counter
    start = clock()
    deadline = start + seconds
    i = 0
    while clock() < deadline:
        op(i)
        i += 1
    return i / (clock() - start)
