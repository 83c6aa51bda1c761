"""Ending the database session of an owner whose lease has lapsed, when it blocks a takeover.

An owner cut off from PostgreSQL in the middle of a commit leaves its session
"active / ClientRead" (a pipelined commit waits for the rest of its messages),
holding the commit's FOR SHARE locks on its lease rows. No server timeout fires
for that state and, when something between the two still acknowledges TCP, no
keepalive either; a taker's UPDATE of the row then fails on `lock_timeout` for
as long as the link is silent. Once the lease has expired on the database's own
clock the owner has stopped serving (local validity ends a margin earlier) and
every later commit of it is fenced; so ending its sessions loses nothing it
acknowledged: the interrupted transaction rolls back, and its caller was never
told it committed.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from services.cache.storage.pg_session import SESSION_PREFIX
from services.cache.storage.tables import leases

log = logging.getLogger(__name__)

# PostgreSQL's lock_not_available (lock_timeout, NOWAIT).
LOCK_NOT_AVAILABLE = "55P03"

# One statement, so the expiry test and the termination see the same row: a lease
# renewed meanwhile (its owner alive after all) ends nothing.
_END_LAPSED = text(
    f"""
    SELECT a.pid, pg_terminate_backend(a.pid) AS ended
    FROM {leases.name} l
    JOIN pg_stat_activity a ON a.application_name = :session_prefix || l.owner_token
    WHERE l.prefix = :prefix
      AND l.owner_token <> :me
      AND l.expires_at <= EXTRACT(EPOCH FROM clock_timestamp())
      AND a.pid <> pg_backend_pid()
      AND a.state <> 'idle'
    """
)


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL giving up a row-lock wait (lock_timeout)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    return getattr(orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


def end_lapsed_owner_sessions(conn: Connection, prefix: str, me: str) -> int:
    """End the busy sessions of `prefix`'s owner if its lease has expired; how many."""
    rows = conn.execute(
        _END_LAPSED, {"session_prefix": SESSION_PREFIX, "prefix": prefix, "me": me}
    ).all()
    ended = [int(r.pid) for r in rows if r.ended]
    if ended:
        log.warning(
            "prefix %r: its lapsed owner's database sessions %s held the lease row; "
            "ended them so the takeover can proceed",
            prefix,
            ended,
        )
    return len(ended)
