"""Whether the database answers, as the last call found: one log line per change.

During a PostgreSQL failover every commit, read and heartbeat fails for a few
seconds. Logging each with its traceback buried the one thing an operator needs
(the database went away at T, came back at T+n); so calls report here, and only
a change of state is logged. A failure that is not a lost connection (a bug, a
constraint) is not the link's business: the caller logs it in full.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` says the connection to the database was lost or refused."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def first_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message (drivers add pages)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


class DbLink:
    """Up or down, as the database's last callers found it; logs each transition once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._down_since: float | None = None
        # Transitions to down, for tests and the curious.
        self.outages = 0

    @property
    def up(self) -> bool:
        """False from a lost connection until the next call that succeeded."""
        return self._down_since is None

    def failed(self, what: str, exc: BaseException) -> None:
        """A call (`what`: commit, read, heartbeat) lost its connection."""
        if self._down_since is not None:
            log.debug("database %s still unreachable (%s): %s", self.name, what, first_line(exc))
            return
        self._down_since = time.monotonic()
        self.outages += 1
        log.warning(
            "database %s unreachable (%s failed: %s); writes and uncached reads answer "
            "UNAVAILABLE until a writable host answers again",
            self.name,
            what,
            first_line(exc),
        )

    def ok(self) -> None:
        """A call succeeded."""
        if self._down_since is None:
            return
        gap = time.monotonic() - self._down_since
        self._down_since = None
        log.warning("database %s reachable again after %.1fs", self.name, gap)
