"""The writer's common transaction on SQLite, straight on the driver: fenced upserts only.

A group of Sets is the transaction the writer runs most. Through SQLAlchemy it
paid a pool checkout, the BEGIN event, the compiled fence query and the
result proxies on top of SQLite's own work, all while holding the GIL the event
loop needs (#22). Here it is the driver's calls only, on one connection the
writer thread keeps: BEGIN IMMEDIATE, the fence SELECT, one multi-row upsert per
64 rows, COMMIT. Anything else (deletes, clears, sweeps) goes the general way
(`CacheDb.apply`), in its own transaction, so the semantics are the same.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError

from services.cache.storage.writes import STORED, Outcome, Put, WriteOp

# The raw connection of the engine's pool (its connect hook set WAL, synchronous,
# busy_timeout and autocommit), checked out for good.
Connect = Callable[[], Any]
# The upsert of n rows in one statement.
UpsertSql = Callable[[int], str]
# Rows per statement: one statement is one call into SQLite, so the writer gives up
# and takes back the GIL (which the event loop wants) once per chunk, not once per
# row as `executemany` does. 64 rows of 5 columns stay far below SQLite's limit of
# bound parameters; the statements of 1 to 64 rows fit the driver's statement cache.
CHUNK = 64


def all_puts(submissions: Sequence[Sequence[WriteOp]]) -> bool:
    """Whether the group is only Sets (the transaction this module runs)."""
    return all(op.__class__ is Put for ops in submissions for op in ops)


class SqliteWriter:
    """Fenced upserts in one transaction on the writer thread's own connection."""

    def __init__(self, connect: Connect, upsert_sql: UpsertSql, leases_table: str) -> None:
        self._connect = connect
        self._conn: Any = None
        self._statements = [""] + [upsert_sql(n) for n in range(1, CHUNK + 1)]
        self._leases = leases_table

    def apply(
        self, submissions: Sequence[Sequence[Put]], now: float, fence: str | None
    ) -> list[list[Outcome] | None]:
        """Per submission its outcomes, or None when its fence no longer holds."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            refused = self._refused(conn, submissions, fence) if fence is not None else set()
            outcomes: list[list[Outcome] | None] = []
            # Last writer wins within the group: one row per key.
            rows: dict[str, tuple[str, str, bytes, float, float]] = {}
            for ops in submissions:
                if refused and any(op.fence in refused for op in ops):
                    outcomes.append(None)
                    continue
                outcomes.append([STORED] * len(ops))
                for op in ops:
                    rows.pop(op.key, None)
                    rows[op.key] = (op.key, op.prefix, op.blob, op.expires_at, now)
            self._upsert(conn, list(rows.values()))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            # The types the general path raises (OperationalError, IntegrityError...), so
            # the committer tells an outage from a refused write the same way.
            raise DBAPIError.instance(
                "the writer's group of upserts", None, exc, sqlite3.Error
            ) from exc
        except BaseException:
            self._rollback(conn)
            raise
        return outcomes

    def close(self) -> None:
        """Give the connection back (the engine's dispose closes it)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _upsert(self, conn: Any, rows: list[tuple[str, str, bytes, float, float]]) -> None:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            conn.execute(self._statements[len(chunk)], [v for row in chunk for v in row])

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _refused(
        self, conn: Any, submissions: Sequence[Sequence[Put]], token: str
    ) -> set[tuple[str, int]]:
        wanted = {op.fence for ops in submissions for op in ops}
        prefixes = sorted({prefix for prefix, _ in wanted})
        marks = ", ".join("?" * len(prefixes))
        held = conn.execute(
            f"SELECT prefix, epoch FROM {self._leases} "
            f"WHERE owner_token = ? AND prefix IN ({marks})",
            [token, *prefixes],
        ).fetchall()
        return wanted - {(prefix, int(epoch)) for prefix, epoch in held}

    def _rollback(self, conn: Any) -> None:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            # No transaction left (BEGIN failed) or the connection broke: start afresh.
            self.close()
