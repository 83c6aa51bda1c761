"""The database's disk: an alarm when it fills (or passes CACHE_DB_MAX_BYTES), space
held in reserve for the lease heartbeat, and recovery when space returns.

A full disk must not stop reads of acknowledged data. Reads come from memory or
from the file without new pages, but the lease heartbeat is a write: once it
failed, a node refused Gets of keys it held ("its lease may have lapsed"). So
beside a SQLite file every node keeps a preallocated reserve file; the first
"disk is full" it meets raises the alarm and deletes the reserve, and from then
on client writes are refused before they reach the database (RESOURCE_EXHAUSTED,
known not applied), leaving the freed space to the heartbeats. Once the disk has
room for the reserve again, it is taken back and the alarm clears.

The quota (CACHE_DB_MAX_BYTES, like etcd's backend quota) raises the same alarm
while the database's size is at or over it, before the disk itself fills. On
PostgreSQL the disk is the server's: its "disk full" error raises the alarm,
which clears after `RETRY_SECONDS` so that the next write finds out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from services.cache.errors import CacheError, Failure

log = logging.getLogger(__name__)

# Bytes held in reserve beside a SQLite file: heartbeats for a long while (each
# rewrites a few pages of the WAL, which is reused after every checkpoint).
RESERVE_BYTES = 8 * 1024 * 1024
# How often the alarm looks for space again, and the quota measures the database.
PROBE_SECONDS = 1.0
# On PostgreSQL (no disk of ours to look at): let writes try again after this.
RETRY_SECONDS = 5.0
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether a database error says its disk is full (SQLITE_FULL, PostgreSQL 53100)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    return getattr(orig, "sqlstate", None) == _PG_DISK_FULL


class DiskGuard:
    """The alarm, the reserve beside a SQLite file, and the optional size quota."""

    def __init__(
        self,
        sqlite_file: Path | None,
        size: Callable[[], int],
        *,
        max_bytes: int = 0,
        owner: str = "",
        reserve_bytes: int = RESERVE_BYTES,
    ) -> None:
        self._file = sqlite_file
        self._size = size
        self.max_bytes = max_bytes
        self._reserve_bytes = reserve_bytes
        self._reserve = (
            sqlite_file.with_name(f"{sqlite_file.name}.reserve-{owner or os.getpid()}")
            if sqlite_file is not None
            else None
        )
        # Why writes are refused now ("disk" or "quota"), or None.
        self.reason: str | None = None
        self._since = 0.0
        self._used = 0

    @property
    def full(self) -> bool:
        """Whether the alarm is raised (the cache_db_disk_full gauge)."""
        return self.reason is not None

    def where(self) -> str:
        """What the messages call the disk."""
        return f"the disk holding {self._file}" if self._file else "the database server's disk"

    # -- called by the database (writer thread) and the store -----------------------

    def take_reserve(self) -> None:
        """Create the reserve file (at start); the alarm is raised when it cannot be."""
        problem = self._hold()
        if problem is not None:
            self._raise("disk", f"cannot hold {self._reserve_bytes} bytes in reserve: {problem}")

    def filled(self) -> None:
        """The database said its disk is full: raise the alarm, free the reserve."""
        if self._reserve is not None:
            self._reserve.unlink(missing_ok=True)
        self._raise("disk", "a write found it full")

    def check(self) -> None:
        """Before a client write: RESOURCE_EXHAUSTED (not applied) while the alarm is on."""
        if self.reason is None:
            return
        if self.reason == "quota":
            why = (
                f"the database holds {self._used} bytes, at or over CACHE_DB_MAX_BYTES "
                f"({self.max_bytes}): raise it, or free space"
            )
        else:
            why = f"{self.where()} is full: free space there"
        raise CacheError(
            Failure.DISK_FULL,
            f"{why}; the write was not applied. Reads go on, and writes resume by "
            "themselves once there is room",
        )

    def refusal(self, exc: BaseException) -> CacheError | None:
        """The error for a commit that failed on a full disk (atomic, so not applied)."""
        if not is_disk_full(exc):
            return None
        return CacheError(
            Failure.DISK_FULL,
            f"{self.where()} is full ({type(exc).__name__}); the write was not applied. "
            "Reads go on, and writes resume by themselves once there is room",
        )

    # -- the probe (a task of the store) ---------------------------------------------

    async def run(self) -> None:
        """Look for space and measure the quota every PROBE_SECONDS, until cancelled."""
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            if not self.max_bytes and self.reason is None:
                continue  # nothing to measure, nothing to clear
            try:
                await asyncio.to_thread(self.probe)
            except Exception as exc:  # a probe that failed is tried again next time
                log.debug("disk probe failed: %s", exc)

    def probe(self) -> None:
        """One look: clear the alarm once there is room (blocking)."""
        if self.max_bytes:
            self._used = self._size()
            if self._used >= self.max_bytes:
                self._raise("quota", f"{self._used} bytes, CACHE_DB_MAX_BYTES {self.max_bytes}")
                return
        if self.reason == "quota":
            self._clear()
        elif self.reason == "disk":
            if self._file is None:
                if time.monotonic() - self._since >= RETRY_SECONDS:
                    self._clear()
                return
            free = shutil.disk_usage(self._file.parent).free
            if free >= 2 * self._reserve_bytes and self._hold() is None:
                self._clear()

    def release(self) -> None:
        """Delete the reserve file (the store closes)."""
        if self._reserve is not None:
            with contextlib.suppress(OSError):
                self._reserve.unlink(missing_ok=True)

    def _hold(self) -> OSError | None:
        """Write the reserve file; the error when the disk has no room for it."""
        if self._reserve is None:
            return None
        try:
            with open(self._reserve, "wb") as f:
                os.posix_fallocate(f.fileno(), 0, self._reserve_bytes)
                os.fsync(f.fileno())
        except OSError as exc:
            self._reserve.unlink(missing_ok=True)
            return exc
        return None

    def _raise(self, reason: str, detail: str) -> None:
        if self.reason != reason:
            log.warning(
                "%s: writes refused (RESOURCE_EXHAUSTED) until there is room; reads go on (%s)",
                "database quota reached" if reason == "quota" else f"{self.where()} is full",
                detail,
            )
        self.reason = reason
        self._since = time.monotonic()

    def _clear(self) -> None:
        was, self.reason = self.reason, None
        if was is not None:
            log.warning("database space available again (%s alarm cleared): writes resume", was)
