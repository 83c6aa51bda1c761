"""Whether the PostgreSQL the cache writes to replicates synchronously, checked at start.

With asynchronous replication (PostgreSQL's and most operators' default) a
failover can drop transactions the old primary had committed: writes the cache
acknowledged, and lease epochs, so one fencing token could be issued twice.
Synchronous replication (a non-empty `synchronous_standby_names` and a
`synchronous_commit` that waits for the standby) keeps an acknowledged commit on
two servers. The check reads the settings of the server the URL reaches (the
primary: the one that makes the promise).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import text

from services.cache.storage.db import CacheDb

log = logging.getLogger(__name__)

REQUIRE_VAR = "CACHE_REQUIRE_SYNC_REPLICATION"
METRIC = "cache_db_synchronous_replication"
HELP = (
    "1 when the PostgreSQL primary waits for a synchronous standby before a commit "
    "returns (an acknowledged write survives a failover), 0 when a failover may lose "
    "acknowledged writes; absent on SQLite"
)
# synchronous_commit levels at which a commit waits for the standbys named in
# synchronous_standby_names (local and off never wait).
_WAITING_LEVELS = frozenset({"on", "remote_write", "remote_apply"})


class ReplicationError(RuntimeError):
    """The database does not replicate synchronously and the settings demand it."""


@dataclass(frozen=True, slots=True)
class Replication:
    """What the server says about its replication."""

    database: str
    standby_names: str
    commit_level: str
    # Standbys pg_stat_replication shows as sync or quorum; None when not visible.
    sync_standbys: int | None

    @property
    def synchronous(self) -> bool:
        """Whether a commit waits for a standby (so a failover keeps it)."""
        return bool(self.standby_names.strip()) and self.commit_level in _WAITING_LEVELS

    def risk(self) -> str:
        """The one-line warning when not synchronous."""
        return (
            f"database {self.database} does not replicate synchronously "
            f"(synchronous_standby_names={self.standby_names!r}, "
            f"synchronous_commit={self.commit_level!r}): a failover to a standby may lose "
            "writes the cache acknowledged and roll lease epochs back; configure a "
            "synchronous standby (CloudNativePG: dataDurability: required), or set "
            f"{REQUIRE_VAR}=true to refuse to start on such a database"
        )


def inspect(db: CacheDb) -> Replication | None:
    """The replication settings of `db` (blocking), or None on SQLite."""
    if db.dialect != "postgresql":
        return None
    with db.engine.connect() as conn:
        names = str(conn.execute(text("SHOW synchronous_standby_names")).scalar_one())
        level = str(conn.execute(text("SHOW synchronous_commit")).scalar_one())
        # Rows are visible to superusers and pg_monitor members; otherwise sync_state is NULL.
        states = [
            r[0]
            for r in conn.execute(text("SELECT sync_state FROM pg_stat_replication")).fetchall()
        ]
    visible = [s for s in states if s is not None]
    sync = sum(1 for s in visible if s in ("sync", "quorum")) if visible or not states else None
    return Replication(db.link.name, names, level, sync)


def judge(found: Iterable[Replication], *, require: bool) -> None:
    """Log one warning per unsynchronised database, or refuse (`require`) with the reason."""
    for replication in found:
        if replication.synchronous:
            if replication.sync_standbys == 0:
                log.warning(
                    "database %s names synchronous standbys but none is connected: "
                    "commits wait until one is",
                    replication.database,
                )
            continue
        if require:
            raise ReplicationError(
                f"{REQUIRE_VAR}=true, but database {replication.database} does not replicate "
                f"synchronously (synchronous_standby_names={replication.standby_names!r}, "
                f"synchronous_commit={replication.commit_level!r})"
            )
        log.warning("%s", replication.risk())


class ReplicationGauge:
    """`cache_db_synchronous_replication`: 0 if any database this process writes to
    replicates asynchronously, else 1; no sample on SQLite (nothing to replicate)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._found: list[Replication] = []
        registry.register(self)

    def set(self, found: Iterable[Replication]) -> None:
        """What the start-up check found."""
        self._found = list(found)

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(METRIC, HELP)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(METRIC, HELP)
        if self._found:
            family.add_metric([], float(all(r.synchronous for r in self._found)))
        yield family


async def check(dbs: Iterable[CacheDb], gauge: ReplicationGauge, *, require: bool) -> None:
    """The start-up check of every database: set the gauge, warn or refuse."""
    found = [r for db in dbs if (r := await asyncio.to_thread(inspect, db)) is not None]
    gauge.set(found)
    judge(found, require=require)
