"""Database reads on a small thread pool, with failures turned into UNAVAILABLE."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from services.cache.errors import CacheError, Failure
from services.cache.storage.db import CacheDb, Row
from services.cache.storage.db_link import is_disconnect

log = logging.getLogger(__name__)

T = TypeVar("T")


class Readers:
    """Runs CacheDb reads off the event loop (WAL lets them run beside the writer)."""

    def __init__(self, db: CacheDb, threads: int) -> None:
        self._db = db
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="cache-reader")

    async def _run(self, what: str, fn: Callable[[], T]) -> T:
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except SQLAlchemyError as exc:
            if is_disconnect(exc):
                self._db.link.failed(what, exc)
            else:
                log.warning("database %s failed: %s", what, exc)
            raise CacheError(
                Failure.UNAVAILABLE,
                f"the database {what} failed ({type(exc).__name__}); retry later",
            ) from exc
        self._db.link.ok()
        return result

    async def rows(self, keys: list[str], now: float) -> dict[str, Row]:
        """The live rows among `keys`."""
        return await self._run("read", lambda: self._db.get_many(keys, now))

    async def load_recent(
        self, now: float, budget: int, cost: Callable[[Row], int], prefix: str | None = None
    ) -> tuple[list[Row], bool]:
        """The newest live rows (of `prefix`, or all) that fit `budget`, and whether that
        was all of them."""
        return await self._run("load", lambda: self._db.load_recent(now, budget, cost, prefix))

    async def page(
        self, prefix: str, after: str, limit: int, now: float, *, values: bool
    ) -> list[Row]:
        """A page of `prefix`'s live rows after the key `after`, in key order."""
        return await self._run(
            "scan", lambda: self._db.page(prefix, after, limit, now, values=values)
        )

    async def key_counts(self, now: float) -> dict[str, int]:
        """Live rows per prefix."""
        return await self._run("key count", lambda: self._db.count_by_prefix(now))

    async def probe(self) -> None:
        """Raise CacheError UNAVAILABLE when the database does not answer."""
        await self._run("probe", self._db.probe)

    def close(self) -> None:
        """Wait for running reads, then stop the threads."""
        self._pool.shutdown(wait=True)
