"""What every round's history must satisfy, and what it measured.

- linearizability, per key (`linearizability.check_register`), from the state
  settled at the start of the round to the reads that settle its end;
- acknowledged is never lost: the settled value is the newest acknowledged
  write's, or a write whose outcome was unknown and that may have come later;
- bounded staleness of the near-cache reads (`staleness.violations`), with the
  linearizable reads as evidence of a write whose outcome was unknown taking
  effect late;
- epochs never go backwards: the lease table, polled all along (`EpochWatch`);
- a write refused RESOURCE_EXHAUSTED was not applied: no read, near-cache read or
  settled state may show its value.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
from sqlalchemy.engine import make_url

from harness.nemesis.linearizability import READ, WRITE, Op, check_register
from harness.nemesis.staleness import Seen, Write, violations
from harness.nemesis.workload import NEAR_BOUND_MS, Segment


@dataclass
class RoundResult:
    """One fault round's figures and violations."""

    fault: str
    database: str
    victim: str
    operations: int = 0
    acknowledged: int = 0
    unknown: int = 0
    # Writes refused RESOURCE_EXHAUSTED (known not applied: a full disk).
    refused: int = 0
    lost: int = 0
    stale: int = 0
    # Longest time any key went without an acknowledged write, from the fault to the
    # end of the round (s), and that key.
    window: float = 0.0
    slowest_key: str = ""
    # Keys with no write acknowledged between the fault and the settle: an
    # availability figure (the round ends a few seconds after recovery), not a violation.
    unrecovered: int = 0
    # Violations: lost or stale, epochs backwards, a node that exited.
    problems: list[str] = field(default_factory=list)


def check_segment(
    segment: Segment,
    *,
    initial: Mapping[str, object],
    settled: Mapping[str, object],
    started_at: float,
    fault_at: float,
    ended_at: float,
    result: RoundResult,
) -> None:
    """Judge one round's history into `result`."""
    result.operations = segment.operations
    for key, ops in segment.ops.items():
        writes = [op for op in ops if op.kind == WRITE]
        result.acknowledged += sum(1 for op in writes if op.complete is not None)
        result.unknown += sum(1 for op in writes if op.complete is None)
        verdict = check_register(ops, initial.get(key))
        if not verdict:
            result.stale += 1
            stuck = ", ".join(f"{op.kind} {op.value!r}" for op in verdict.stuck[:3])
            result.problems.append(f"{key}: not linearizable (stuck at {stuck})")
        if settled.get(key) not in _allowed(writes, initial.get(key)):
            result.lost += 1
            result.problems.append(f"{key}: settled at {settled.get(key)!r}, not allowed")
    _check_refused(segment, settled, result)
    # The near cache: the settled start value counts as a write acknowledged at the start.
    baseline = [Write(k, v, started_at, started_at, None) for k, v in initial.items()]
    seen = [
        Seen(key, op.value, op.complete)
        for key, ops in segment.ops.items()
        for op in ops
        if op.kind == READ and op.complete is not None
    ]
    found = violations(baseline + segment.writes, segment.near_reads, NEAR_BOUND_MS / 1000, seen)
    result.stale += len(found)
    result.problems += found[:5]
    for key in segment.ops:
        times = sorted(t for t in segment.acks.get(key, []) if t >= fault_at)
        # A key not written again after some time was unavailable until the round ended.
        edges = [fault_at, *times, ended_at]
        window = max(b - a for a, b in itertools.pairwise(edges))
        if window > result.window:
            result.window, result.slowest_key = window, key
    result.unrecovered = sum(
        1 for key in segment.ops if not [t for t in segment.acks.get(key, []) if t >= fault_at]
    )


def _check_refused(segment: Segment, settled: Mapping[str, object], result: RoundResult) -> None:
    """A refused write's value seen anywhere: it was applied after all. (The reads and
    the settled state count as stale or lost already; this names the cause.)"""
    result.refused = sum(len(values) for values in segment.refused.values())
    seen = [(op.value, "read") for ops in segment.ops.values() for op in ops if op.kind == READ]
    seen += [(r.value, "near-cache read") for r in segment.near_reads]
    seen += [(v, "settled state") for v in settled.values()]
    refused = {v for values in segment.refused.values() for v in values}
    for value, where in seen:
        if isinstance(value, str) and value in refused:
            result.problems.append(f"a {where} saw {value!r}, a write refused RESOURCE_EXHAUSTED")


def _allowed(writes: list[Op], initial: object) -> list[object]:
    acked = [w for w in writes if w.complete is not None]
    unknown = [w.value for w in writes if w.complete is None]
    if not acked:
        return [initial, *unknown]
    latest_invoke = max(w.invoke for w in acked)
    return [w.value for w in acked if (w.complete or 0.0) >= latest_invoke] + unknown


class EpochWatch:
    """Polls the lease table; any prefix whose epoch went down is a violation."""

    def __init__(self, db_url: str) -> None:
        self._url = make_url(db_url)
        self.seen: dict[str, int] = {}
        self.backwards: list[str] = []
        self.polls = 0

    def _read(self) -> list[tuple[str, int]]:
        url = self._url
        if url.get_backend_name() == "sqlite":
            with sqlite3.connect(f"file:{url.database}?mode=ro", uri=True, timeout=30) as conn:
                return [
                    (p, int(e)) for p, e in conn.execute("SELECT prefix, epoch FROM cache_leases")
                ]
        dsn = f"postgresql://{url.username}@{url.host}:{url.port}/{url.database}"
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            rows = conn.execute("SELECT prefix, epoch FROM cache_leases").fetchall()
        return [(str(p), int(e)) for p, e in rows]

    def poll(self) -> None:
        self.polls += 1
        for prefix, epoch in self._read():
            before = self.seen.get(prefix, 0)
            if epoch < before:
                self.backwards.append(f"prefix {prefix!r}: epoch {before} -> {epoch}")
            self.seen[prefix] = max(before, epoch)

    async def run(self, stop: asyncio.Event, every: float = 0.5) -> None:
        while not stop.is_set():
            # A busy database: the next poll sees the same table.
            with contextlib.suppress(sqlite3.Error, psycopg.Error):
                await asyncio.to_thread(self.poll)
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                continue
