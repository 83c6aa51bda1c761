"""Crash loop: SIGKILL the cache at a random moment under 64-way concurrent writes, many times.

After every restart: each key holds the latest acknowledged write or a later
unacknowledged one (never an older value), every MSet of fresh keys is
all-or-nothing, and the database passes its own integrity check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psycopg
import pytest

from marketcache.v1 import cache_pb2_grpc
from tests.reliability.crash_load import SHARED_KEYS, CrashLoad, read_states
from tests.reliability.history import ABSENT, History
from tests.reliability.records import nothing_lost, record
from tests.support.processes import ServiceProcess, start_service

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.e2e]

SQLITE_ROUNDS = int(os.environ.get("CRASH_ROUNDS", "20"))
POSTGRES_ROUNDS = int(os.environ.get("CRASH_ROUNDS_PG", "5"))
# Acknowledged calls before the kill: drawn per round, so the kill lands at a random moment.
KILL_AFTER = (20, 400)


@dataclass
class Summary:
    """Totals over every round."""

    rounds: int = 0
    acked_ops: int = 0
    unacked_ops: int = 0
    batches_applied: int = 0
    batches_skipped: int = 0
    batches_acked: int = 0
    in_flight_at_kills: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    kill_points: list[int] = field(default_factory=list)


def cache_env(db_url: str) -> dict[str, str]:
    return {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": db_url,
        "CACHE_NODE_ID": "crash-node",
        "GRPC_DRAIN_SECONDS": "1",
    }


async def _verify(stub: cache_pb2_grpc.CacheServiceAsyncStub, history: History, s: Summary) -> None:
    batch_keys = [key for batch in history.batches for key in batch.keys]
    observed = await read_states(stub, [*SHARED_KEYS, *batch_keys])
    for violation in history.check(observed):
        s.violations.append(
            f"{violation.key}: holds {violation.observed!r}, allowed {violation.allowed!r} "
            f"(newest acknowledged: {violation.newest_acked})"
        )
    present: Counter[int] = Counter()
    for batch in history.batches:
        present[batch.batch_id] = sum(1 for k in batch.keys if observed[k] is not ABSENT)
    problems, applied, skipped = history.check_batches(present)
    s.violations.extend(problems)
    s.batches_applied += applied
    s.batches_skipped += skipped
    s.batches_acked += sum(1 for b in history.batches if b.acked is not None)
    s.acked_ops += history.acknowledged
    s.unacked_ops += history.unacknowledged
    history.settle(observed)


async def crash_loop(
    label: str, db_url: str, workdir: Path, rounds: int, integrity: Callable[[], str]
) -> Summary:
    """Run `rounds` kill/restart rounds over one database; verify after every restart."""
    rng = random.Random(label)
    history = History()
    summary = Summary()
    for round_no in range(rounds + 1):
        proc: ServiceProcess = await asyncio.to_thread(
            start_service, "cache", cache_env(db_url), workdir, label=f"cache-{round_no}"
        )
        try:
            async with grpc.aio.insecure_channel(proc.grpc_address) as channel:
                stub = cache_pb2_grpc.CacheServiceStub(channel)
                if round_no:
                    await _verify(stub, history, summary)
                if round_no == rounds:
                    break
                kill_after = rng.randint(*KILL_AFTER)
                outcome = await CrashLoad(stub, history, seed=rng.randrange(1 << 30)).run(
                    proc, kill_after
                )
            summary.rounds += 1
            summary.kill_points.append(kill_after)
            summary.in_flight_at_kills += outcome.in_flight_at_kill
            summary.calls.update(outcome.calls)
            summary.violations.extend(f"round {round_no}: {u}" for u in outcome.unexpected)
            summary.integrity.append(await asyncio.to_thread(integrity))
        finally:
            proc.stop()
    return summary


def sqlite_integrity(path: Path) -> Callable[[], str]:
    def check() -> str:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))

    return check


def postgres_integrity(url: str) -> Callable[[], str]:
    """amcheck over every index of the table, with a heap scan that every row is indexed."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)

    def check() -> str:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            indexes = conn.execute(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'cache_entries'::regclass"
            ).fetchall()
            for (name,) in indexes:
                conn.execute("SELECT bt_index_check(%s::regclass, true)", (name,))
        return "ok" if indexes else "no indexes found"

    return check


def record_summary(name: str, database: Database, s: Summary, bad_integrity: list[str]) -> None:
    """Write the RELIABILITY.md record of one crash loop (the test itself judges it)."""
    lost = len(s.violations) + len(bad_integrity)
    record(
        name,
        tried=(
            f"SIGKILL of the cache ({database.name}) at a random moment of 64-way concurrent "
            "Set/MSet/Delete, then restart; every key checked against its history (latest "
            "acknowledged write or a later unacknowledged one), MSet batches all-or-nothing, "
            + database.integrity_check
        ),
        cases=(
            f"{s.rounds} rounds; {s.acked_ops} acknowledged and {s.unacked_ops} unacknowledged "
            f"key writes; {s.batches_applied + s.batches_skipped} fresh-key MSet batches"
        ),
        lost=nothing_lost(lost, "violations"),
        figures={
            "rounds": s.rounds,
            "acknowledged key writes": s.acked_ops,
            "unacknowledged key writes (in flight at a kill)": s.unacked_ops,
            "calls by kind": dict(s.calls),
            "fresh-key batches applied / not applied / acknowledged": (
                f"{s.batches_applied} / {s.batches_skipped} / {s.batches_acked}"
            ),
            "calls in flight at the kills (total)": s.in_flight_at_kills,
            "kill after N acknowledged calls, per round": s.kill_points,
            "integrity checks ok": f"{len(s.integrity) - len(bad_integrity)} of {len(s.integrity)}",
            "violations": s.violations[:20],
        },
        passed=lost == 0,
    )


@dataclass(frozen=True)
class Database:
    """One database the crash loop runs on, and how its own integrity is checked."""

    name: str
    seed: str
    url: str
    rounds: int
    integrity: Callable[[], str]
    integrity_check: str


@pytest.fixture(
    params=["SQLite", pytest.param("PostgreSQL", marks=pytest.mark.postgres)],
)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "SQLite":
        path = tmp_path / "cache.db"
        return Database(
            "SQLite",
            "crash-sqlite",
            f"sqlite:///{path}",
            SQLITE_ROUNDS,
            sqlite_integrity(path),
            "PRAGMA integrity_check",
        )
    url = str(request.getfixturevalue("pg_url"))
    return Database(
        "PostgreSQL",
        "crash-postgres",
        url,
        POSTGRES_ROUNDS,
        postgres_integrity(url),
        "amcheck on every index",
    )


async def test_crash_loop(database: Database, tmp_path: Path) -> None:
    s = await crash_loop(database.seed, database.url, tmp_path, database.rounds, database.integrity)
    bad_integrity = [result for result in s.integrity if result != "ok"]
    record_summary(f"crash loop ({database.name})", database, s, bad_integrity)

    assert s.rounds == database.rounds and s.acked_ops > 0
    assert not s.violations, "\n".join(s.violations[:50])
    assert not bad_integrity, bad_integrity
    # Unacknowledged writes existed, so the kills really landed mid-load.
    assert s.unacked_ops + s.batches_skipped > 0, f"no write in flight at {s.rounds} kills"
