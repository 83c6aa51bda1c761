"""The database under the cache: SQLAlchemy Core over SQLite (WAL) or PostgreSQL.

Every method here is blocking; the store calls writes from its single writer
thread and reads from a small reader pool.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from services.cache.storage.db_link import DbLink
from services.cache.storage.db_watchdog import Watchdog, watch_checkouts
from services.cache.storage.disk import DiskGuard, is_disk_full
from services.cache.storage.pg_session import connect_args
from services.cache.storage.sqlite_writer import SqliteWriter, all_puts
from services.cache.storage.tables import entries, leases, metadata
from services.cache.storage.writes import (
    STORED,
    ClearPrefix,
    Outcome,
    Put,
    Remove,
    Sweep,
    WriteOp,
    dispatch,
)

log = logging.getLogger(__name__)

# Any constant: serialises schema creation across processes starting together.
_SCHEMA_LOCK = 0x6D63_6163_6865

# One outcome per op of an applied submission, or None: refused by its fence.
Outcomes = list[Outcome] | None


@dataclass(frozen=True, slots=True)
class Row:
    """One stored entry as read back."""

    key: str
    prefix: str
    blob: bytes
    expires_at: float


class CacheDb:
    """The cache tables behind one SQLAlchemy engine."""

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "full",
        pool_size: int = 6,
        idle_transaction_timeout: float | None = None,
        max_bytes: int = 0,
        owner: str = "",
        session_token: str | None = None,
    ) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.watchdog: Watchdog | None = None
        # Up or down, told by every caller; logs once per change (never the password).
        self.link = DbLink(parsed.render_as_string(hide_password=True))
        kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 4}
        self._sqlite_file = Path(parsed.database or "") if self.dialect == "sqlite" else None
        if self.dialect == "sqlite":
            # The writer thread and the reader pool share pooled connections.
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # Pinged at checkout: by the pool, or by the watchdog when there is one.
            kwargs["pool_pre_ping"] = idle_transaction_timeout is None
            if idle_transaction_timeout is not None:
                # A paused process or a silent link must not hold its row locks (and
                # so every other node's takeover) for much longer than a lease.
                kwargs["connect_args"] = connect_args(idle_transaction_timeout, session_token)
        self.engine: Engine = create_engine(url, **kwargs)
        # Full disk or quota: the alarm, the heartbeat's reserve, recovery (disk.py).
        self.disk = DiskGuard(self._sqlite_file, self.size_bytes, max_bytes=max_bytes, owner=owner)
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine, synchronous)
        elif idle_transaction_timeout is not None:
            self.watchdog = watch_checkouts(
                self.engine, 2 * idle_transaction_timeout, self.link.name
            )
        self.insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        # Our leases among some prefixes, built once (the writer asks in every transaction).
        # FOR SHARE on PostgreSQL: a concurrent takeover (an UPDATE of the row) waits
        # for our commit, and one that committed first is seen (the row re-checked).
        # SQLite ignores it: BEGIN IMMEDIATE already made this transaction the only writer.
        self._fence_stmt = (
            select(leases.c.prefix, leases.c.epoch)
            .where(
                leases.c.owner_token == bindparam("token"),
                leases.c.prefix.in_(bindparam("prefixes", expanding=True)),
            )
            .with_for_update(read=True)
        )
        # Built once: the writer runs it in every transaction, and building it
        # through SQLAlchemy Core cost more CPU than SQLite's commit.
        self._upsert_sql = _upsert_sql("?" if self.dialect == "sqlite" else "%s")
        # SQLite: groups of Sets skip SQLAlchemy on the writer thread (#22).
        self._sqlite_writer = (
            SqliteWriter(
                self.engine.raw_connection, functools.partial(_upsert_sql, "?"), leases.name
            )
            if self.dialect == "sqlite"
            else None
        )

    def create_schema(self) -> None:
        """Create the SQLite file's directory, the tables and indexes when missing."""
        if self._sqlite_file is not None:
            self._sqlite_file.expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        # Inside one locked transaction: processes started together would otherwise
        # both see a table missing and both try to create it.
        with self.transaction() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
            metadata.create_all(conn)

    def dispose(self) -> None:
        """Close every pooled connection."""
        if self.watchdog is not None:
            self.watchdog.stop()
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
        self.engine.dispose()

    @contextmanager
    def transaction(self, *, lock_timeout: float | None = None) -> Iterator[Connection]:
        """A write transaction, committed on exit.

        On SQLite it begins IMMEDIATE, taking the database's write lock at once: a
        deferred one that read first could not upgrade to a writer once another
        process wrote meanwhile. On PostgreSQL, `lock_timeout` bounds row-lock waits.
        """
        try:
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                with conn.begin():
                    if lock_timeout is not None and self.dialect == "postgresql":
                        ms = max(1, int(lock_timeout * 1000))
                        conn.execute(text(f"SET LOCAL lock_timeout = {ms}"))
                    yield conn
        except OperationalError as exc:
            if is_disk_full(exc):
                self.disk.filled()  # frees the reserve for the next heartbeat
            raise

    def size_bytes(self) -> int:
        """The database's size on disk (SQLite: the file and its WAL), for the quota."""
        if self._sqlite_file is None:
            with self.engine.connect() as conn:
                query = text("SELECT pg_database_size(current_database())")
                return int(conn.execute(query).scalar_one())
        files = (self._sqlite_file, self._sqlite_file.with_name(self._sqlite_file.name + "-wal"))
        return sum(f.stat().st_size for f in files if f.exists())

    def clock(self, conn: Connection) -> float:
        """Now on the clock every node shares, Unix seconds: the server's on PostgreSQL.

        SQLite is one file on one host, so that host's clock is the shared one.
        """
        if self.dialect == "postgresql":
            now = conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one()
            return float(now)
        return time.time()

    # -- writes (the writer thread) --------------------------------------

    def apply(
        self, submissions: Sequence[Sequence[WriteOp]], now: float, fence: str | None = None
    ) -> list[Outcomes]:
        """Run the submissions in order in ONE transaction; per submission, its results.

        With a `fence` (this process's lease token), a submission commits only if
        every prefix it writes is still leased to us at the epoch it was admitted
        under, checked in this same transaction; otherwise it is skipped (None)
        while the others commit.
        """
        if self._sqlite_writer is not None and all_puts(submissions):
            try:
                return self._sqlite_writer.apply(submissions, now, fence)  # type: ignore[arg-type]
            except OperationalError as exc:
                if is_disk_full(exc):
                    self.disk.filled()  # as transaction() does: the reserve goes
                raise
        with self.transaction() as conn:
            refused = self._refused(conn, submissions, fence) if fence is not None else set()
            outcomes: list[Outcomes] = []
            accepted: list[WriteOp] = []
            for ops in submissions:
                if refused and any(op.fence in refused for op in ops):
                    outcomes.append(None)
                else:
                    outcomes.append([])
                    accepted.extend(ops)
            results = iter(_Batch(conn, now, self._upsert_sql).run(accepted))
            for outcome, ops in zip(outcomes, submissions, strict=True):
                if outcome is not None:
                    outcome.extend(next(results) for _ in ops)
        return outcomes

    def _refused(
        self, conn: Connection, submissions: Sequence[Sequence[WriteOp]], token: str
    ) -> set[tuple[str, int]]:
        wanted = {pair for ops in submissions for op in ops if (pair := op.fence)}
        if not wanted:
            return set()
        prefixes = sorted({p for p, _ in wanted})
        rows = conn.execute(self._fence_stmt, {"token": token, "prefixes": prefixes})
        held = {(r.prefix, int(r.epoch)) for r in rows}
        return wanted - held

    # -- reads (the reader pool) -------------------------------------------

    def get_many(self, keys: Sequence[str], now: float) -> dict[str, Row]:
        """The live rows among `keys`."""
        if not keys:
            return {}
        stmt = select(entries.c.key, entries.c.prefix, entries.c.value, entries.c.expires_at).where(
            entries.c.key.in_(list(set(keys))), entries.c.expires_at > now
        )
        with self.engine.connect() as conn:
            return {r.key: Row(r.key, r.prefix, r.value, r.expires_at) for r in conn.execute(stmt)}

    def load_recent(
        self, now: float, budget: int, cost: Callable[[Row], int], prefix: str | None = None
    ) -> tuple[list[Row], bool]:
        """Live rows (of `prefix`, or all), newest first, while their `cost(row)` fits `budget`.

        Returns the rows and whether that was all of them.
        """
        stmt = select(entries.c.key, entries.c.prefix, entries.c.value, entries.c.expires_at).where(
            entries.c.expires_at > now
        )
        if prefix is not None:
            stmt = stmt.where(entries.c.prefix == prefix)
        stmt = stmt.order_by(entries.c.updated_at.desc()).execution_options(yield_per=1000)
        rows: list[Row] = []
        used = 0
        with self.engine.connect() as conn:
            for r in conn.execute(stmt):
                row = Row(r.key, r.prefix, r.value, r.expires_at)
                size = cost(row)
                if used + size > budget:
                    return rows, False
                used += size
                rows.append(row)
        return rows, True

    def page(self, prefix: str, after: str, limit: int, now: float, *, values: bool) -> list[Row]:
        """Up to `limit` live rows of `prefix` whose keys sort after `after`, in key order
        (byte order on both databases); with `values` False their blobs are left empty."""
        # A prefix's keys all start with "<prefix>:" and sort before "<prefix>;": a
        # range of the primary key, so a page costs `limit` rows, not the table.
        key = entries.c.key.collate("C") if self.dialect == "postgresql" else entries.c.key
        low = after if after else prefix + ":"
        stmt = (
            select(
                entries.c.key,
                entries.c.value if values else entries.c.prefix,
                entries.c.expires_at,
            )
            .where(
                key >= low if not after else key > low,
                key < prefix + ";",
                entries.c.prefix == prefix,
                entries.c.expires_at > now,
            )
            .order_by(key)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [Row(r[0], prefix, r[1] if values else b"", r[2]) for r in conn.execute(stmt)]

    def count_by_prefix(self, now: float) -> dict[str, int]:
        """Live entries per prefix."""
        stmt = (
            select(entries.c.prefix, func.count())
            .where(entries.c.expires_at > now)
            .group_by(entries.c.prefix)
        )
        with self.engine.connect() as conn:
            return {prefix: int(count) for prefix, count in conn.execute(stmt)}

    def probe(self) -> None:
        """Raise when the database cannot answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))


def _upsert_sql(mark: str, rows: int = 1) -> str:
    """INSERT ... ON CONFLICT DO UPDATE of `rows` entries (SQLite and PostgreSQL say it
    alike; several rows must have distinct keys on PostgreSQL)."""
    columns = [c.name for c in entries.columns]
    assert columns == ["key", "prefix", "value", "expires_at", "updated_at"], columns
    row = f"({', '.join([mark] * len(columns))})"
    return (
        f'INSERT INTO {entries.name} ("key", prefix, value, expires_at, updated_at) '
        f"VALUES {', '.join([row] * rows)} "
        'ON CONFLICT ("key") DO UPDATE SET prefix = excluded.prefix, value = excluded.value, '
        "expires_at = excluded.expires_at, updated_at = excluded.updated_at"
    )


class _Batch:
    """Runs accepted writes in order in one transaction (the writer's WriteHandler)."""

    __slots__ = ("_conn", "_now", "_puts", "_upsert_sql")

    def __init__(self, conn: Connection, now: float, upsert_sql: str) -> None:
        self._conn = conn
        self._now = now
        self._upsert_sql = upsert_sql
        # Last writer wins within a run of puts; one upsert per key, because
        # PostgreSQL refuses to update a row twice in a statement.
        self._puts: dict[str, Put] = {}

    def run(self, ops: Sequence[WriteOp]) -> list[Outcome]:
        """The outcome of each op, in order."""
        outcomes = [dispatch(op, self) for op in ops]
        self._flush()
        return outcomes

    def put(self, op: Put) -> Outcome:
        self._puts.pop(op.key, None)
        self._puts[op.key] = op
        return STORED

    def remove(self, op: Remove) -> Outcome:
        self._flush()
        stmt = delete(entries).where(entries.c.key == op.key).returning(entries.c.expires_at)
        expires_at = self._conn.execute(stmt).scalar_one_or_none()
        return Outcome(int(expires_at is not None and expires_at > self._now))

    def clear(self, op: ClearPrefix) -> Outcome:
        self._flush()
        prefix = op.prefix
        live = self._conn.execute(
            delete(entries).where(entries.c.prefix == prefix, entries.c.expires_at > self._now)
        ).rowcount
        self._conn.execute(delete(entries).where(entries.c.prefix == prefix))
        return Outcome(int(live))

    def sweep(self, op: Sweep) -> Outcome:
        self._flush()
        now = self._now
        expired = select(entries.c.key).where(entries.c.expires_at <= now).limit(op.limit)
        # The outer expiry test matters with several processes on PostgreSQL: a row
        # rewritten by its owner after our subquery's snapshot is re-checked, not deleted.
        stmt = delete(entries).where(entries.c.key.in_(expired), entries.c.expires_at <= now)
        return Outcome(int(self._conn.execute(stmt).rowcount))

    def _flush(self) -> None:
        if self._puts:
            rows = [(p.key, p.prefix, p.blob, p.expires_at, self._now) for p in self._puts.values()]
            # Straight to the driver's executemany, tuples in column order.
            self._conn.exec_driver_sql(self._upsert_sql, rows)
            self._puts.clear()


# How long an SQLite statement waits for another process's lock (busy_timeout).
_SQLITE_BUSY_MS = 30_000


def _wal_mode(cursor: Any) -> None:
    """PRAGMA journal_mode=WAL, waiting for the file as busy_timeout would.

    A file another process is still creating (rollback-journal mode, its write
    lock held) answers SQLITE_BUSY at once, without the busy handler: a node
    started beside another on a fresh file would fail its start. So we retry.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)  # SQLite's own busy handler sleeps the same way
        pause = min(pause * 2, 0.05)


def _sqlite_setup(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        # WAL: readers never block the writer nor each other. synchronous=FULL
        # fsyncs the WAL at every commit, so an acknowledged write survives power
        # loss too (NORMAL would survive a process kill but not an OS crash).
        _wal_mode(cursor)
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.close()
        # We say when transactions begin (below), not the driver: it would begin
        # DEFERRED, and only before the first write.
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
