"""The database under the cache: one table, SQLAlchemy Core, SQLite (WAL) or PostgreSQL.

Every method here is blocking; the store calls writes from its single writer
thread and reads from a small reader pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Double,
    Engine,
    Index,
    LargeBinary,
    MetaData,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from services.cache.writes import ClearPrefix, Put, Remove, Sweep, WriteOp

log = logging.getLogger(__name__)

metadata = MetaData()

entries = Table(
    "cache_entries",
    metadata,
    Column("key", Text, primary_key=True),
    Column("prefix", Text, nullable=False),
    # The serialized google.protobuf.Value, served back without a JSON round trip.
    Column("value", LargeBinary, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index("ix_cache_entries_prefix", "prefix"),
    Index("ix_cache_entries_expires_at", "expires_at"),
)


@dataclass(frozen=True, slots=True)
class Row:
    """One stored entry as read back."""

    key: str
    prefix: str
    blob: bytes
    expires_at: float


class CacheDb:
    """The cache table behind one SQLAlchemy engine."""

    def __init__(self, url: str, *, synchronous: str = "full", pool_size: int = 6) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 4}
        self._sqlite_file = Path(parsed.database or "") if self.dialect == "sqlite" else None
        if self.dialect == "sqlite":
            # The writer thread and the reader pool share pooled connections.
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_pragmas(self.engine, synchronous)
        self._insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert

    def create_schema(self) -> None:
        """Create the SQLite file's directory, the table and indexes when missing."""
        if self._sqlite_file is not None:
            self._sqlite_file.expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        metadata.create_all(self.engine)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- writes (the writer thread) --------------------------------------

    def apply(self, ops: Sequence[WriteOp], now: float) -> list[object]:
        """Run `ops` in order in ONE transaction; one result per op."""
        results: list[object] = []
        run: dict[str, Put] = {}
        with self.engine.begin() as conn:
            for op in ops:
                if isinstance(op, Put):
                    # Last writer wins within a run of puts; one upsert per key,
                    # because PostgreSQL refuses to update a row twice in a statement.
                    run.pop(op.key, None)
                    run[op.key] = op
                    results.append(None)
                    continue
                self._upsert(conn, run.values(), now)
                run.clear()
                if isinstance(op, Remove):
                    results.append(self._remove(conn, op.key, now))
                elif isinstance(op, ClearPrefix):
                    results.append(self._clear(conn, op.prefix, now))
                else:
                    results.append(self._sweep(conn, op, now))
            self._upsert(conn, run.values(), now)
        return results

    def _upsert(self, conn: Connection, puts: Iterable[Put], now: float) -> None:
        rows = [
            {
                "key": p.key,
                "prefix": p.prefix,
                "value": p.blob,
                "expires_at": p.expires_at,
                "updated_at": now,
            }
            for p in puts
        ]
        if not rows:
            return
        stmt = self._insert(entries)
        stmt = stmt.on_conflict_do_update(
            index_elements=[entries.c.key],
            set_={
                "prefix": stmt.excluded.prefix,
                "value": stmt.excluded.value,
                "expires_at": stmt.excluded.expires_at,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        conn.execute(stmt, rows)

    def _remove(self, conn: Connection, key: str, now: float) -> bool:
        stmt = delete(entries).where(entries.c.key == key).returning(entries.c.expires_at)
        expires_at = conn.execute(stmt).scalar_one_or_none()
        return expires_at is not None and expires_at > now

    def _clear(self, conn: Connection, prefix: str, now: float) -> int:
        live = conn.execute(
            delete(entries).where(entries.c.prefix == prefix, entries.c.expires_at > now)
        ).rowcount
        conn.execute(delete(entries).where(entries.c.prefix == prefix))
        return int(live)

    def _sweep(self, conn: Connection, op: Sweep, now: float) -> int:
        expired = select(entries.c.key).where(entries.c.expires_at <= now).limit(op.limit)
        return int(conn.execute(delete(entries).where(entries.c.key.in_(expired))).rowcount)

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
        self, now: float, budget: int, cost: Callable[[Row], int]
    ) -> tuple[list[Row], bool]:
        """Live rows, most recently written first, while their `cost(row)` fits `budget`.

        Returns the rows and whether that was all of them.
        """
        stmt = (
            select(entries.c.key, entries.c.prefix, entries.c.value, entries.c.expires_at)
            .where(entries.c.expires_at > now)
            .order_by(entries.c.updated_at.desc())
            .execution_options(yield_per=1000)
        )
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


def _sqlite_pragmas(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        # WAL: readers never block the writer nor each other. synchronous=FULL
        # fsyncs the WAL at every commit, so an acknowledged write survives power
        # loss too (NORMAL would survive a process kill but not an OS crash).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
