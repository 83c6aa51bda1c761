"""How a PostgreSQL session of the cache bounds a silent link: both ends, and a name.

A link can go silent mid-transaction (a partition, a dead middlebox) while both
sockets stay open. The session then holds its row locks (the lease rows a commit
fences on) until one end notices, and other nodes cannot take over meanwhile.
Each end gets a bound of about a lease (see docs/ownership.md):

- the client (libpq): TCP keepalives and `tcp_user_timeout`, so a blocked read or
  an unacknowledged send fails instead of waiting for Linux's two-hour default;
- the server (session settings sent at connect): the same keepalives and
  `tcp_user_timeout`, `client_connection_check_interval` for a query that runs
  while its client is gone, and `idle_in_transaction_session_timeout` for a
  client that is alive but paused;
- `application_name` = `marketcache-<lease token>`: a node taking over a lapsed
  lease can find the lapsed owner's sessions and end the one that blocks it
  (`LeaseDb`), which covers a link that a kernel still acknowledges (a proxy, a
  NAT) where no TCP timer ever fires.
"""

from __future__ import annotations

import math
from typing import Any

SESSION_PREFIX = "marketcache-"


def session_name(token: str) -> str:
    """The application_name of every session of the incarnation with lease `token`."""
    return f"{SESSION_PREFIX}{token}"


def connect_args(lease_seconds: float, token: str | None) -> dict[str, Any]:
    """psycopg connect arguments bounding a silent link to about `lease_seconds`."""
    ms = max(1000, int(lease_seconds * 1000))
    # Probes start after a quarter of a lease of silence; three missed ones end it.
    idle = max(1, math.ceil(lease_seconds / 4))
    server = {
        "idle_in_transaction_session_timeout": ms,
        "tcp_keepalives_idle": idle,
        "tcp_keepalives_interval": 1,
        "tcp_keepalives_count": 3,
        "tcp_user_timeout": ms,
        "client_connection_check_interval": max(250, ms // 4),
    }
    args: dict[str, Any] = {
        "options": " ".join(f"-c {name}={value}" for name, value in server.items()),
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": ms,
        # A new connection into a silent link must not wait forever either.
        "connect_timeout": max(2, math.ceil(lease_seconds)),
    }
    if token is not None:
        args["application_name"] = session_name(token)
    return args
