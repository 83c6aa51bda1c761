"""Ends a database connection checked out for too long: a silent link must not hang a thread.

When a link goes silent without closing (a partition behind a NAT or a proxy
that still acknowledges TCP), a query's reply never comes and no TCP timer
fires: the thread waiting on it (the writer, whose heartbeats keep the leases;
or a reader) would wait for as long as the silence lasts, and past the heal when
the silence ate bytes of the stream. So every checkout of a PostgreSQL
connection is watched, and one held past `limit` seconds has its socket shut
down: the driver's wait fails at once with a lost connection, the pool
discards it, and the caller answers UNAVAILABLE like any other database outage.
No acknowledged write is at risk: a transaction cut short rolls back, and its
callers were not told it committed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

log = logging.getLogger(__name__)


def _socket_of(dbapi_conn: Any) -> int | None:
    """The libpq socket of a psycopg connection (None when it has none)."""
    conn = getattr(dbapi_conn, "driver_connection", dbapi_conn)
    pgconn = getattr(conn, "pgconn", None)
    try:
        return int(pgconn.socket) if pgconn is not None else None
    except Exception:  # a closed connection has no socket: nothing to watch
        return None


class Watchdog:
    """Shuts down the socket of any connection checked out for more than `limit` seconds."""

    def __init__(self, limit: float, name: str) -> None:
        self.limit = limit
        self._name = name
        self._lock = threading.Lock()
        # id(pool record) -> (monotonic deadline, socket fd)
        self._out: dict[int, tuple[float, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Connections ended, for tests and the curious.
        self.ended = 0

    def checked_out(self, record: Any, dbapi_conn: Any) -> None:
        fd = _socket_of(dbapi_conn)
        if fd is None:
            return
        with self._lock:
            self._out[id(record)] = (time.monotonic() + self.limit, fd)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cache-db-watchdog", daemon=True
                )
                self._thread.start()

    def checked_in(self, record: Any) -> None:
        with self._lock:
            self._out.pop(id(record), None)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(max(0.05, self.limit / 4)):
            now = time.monotonic()
            with self._lock:
                # Under the lock: a connection checked in meanwhile is not touched,
                # so its fd (perhaps reused) is never shut down by mistake.
                for key, (deadline, fd) in list(self._out.items()):
                    if now >= deadline:
                        del self._out[key]
                        self._end(fd)

    def _end(self, fd: int) -> None:
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            log.debug("could not end a stuck connection to %s: %s", self._name, exc)
            return
        self.ended += 1
        log.warning(
            "a connection to %s was checked out for more than %.1fs (a silent link?): "
            "ended it, its call fails and the pool opens a new one",
            self._name,
            self.limit,
        )


def watch_checkouts(engine: Engine, limit: float, name: str) -> Watchdog:
    """A watchdog over every checkout of `engine`'s pool, which it also pings.

    The ping is ours, not the pool's `pre_ping`: that one runs before any checkout
    listener, so a ping into a silent link would hang unwatched.
    """
    dog = Watchdog(limit, name)

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        dog.checked_out(record, dbapi_conn)
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as exc:
            dog.checked_in(record)
            # The pool discards this connection and checks out a new one.
            raise DisconnectionError(f"ping failed: {exc}") from exc

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", lambda _dbapi, record: dog.checked_in(record))
    return dog
