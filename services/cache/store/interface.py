"""The store as its callers see it: the `Store` protocol and the values it answers.

The servicer, the sweeper and the server hold a `Store`: the store of one
database (`CacheStore`) or of every shard (`shards.ShardedStore`), never a
union of the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.cache.storage.writes import Outcome
from services.cache.store.admission import NewEntry
from services.cache.store.scan import Page
from services.cache.store.stats import Snapshot
from services.cache.watch.positions import At

HEALTHY = "healthy"
DEGRADED = "degraded"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Health:
    """The store's health: HEALTHY, DEGRADED (serving, with a problem) or UNAVAILABLE,
    and, unless healthy, why."""

    status: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Deletion:
    """One validated delete (of a WriteBatch, or a Delete)."""

    key: str
    prefix: str


@dataclass(frozen=True, slots=True)
class Clearing:
    """One validated Clear of a whole prefix."""

    prefix: str


# A validated change, as the store's one write path takes them.
Change = NewEntry | Deletion | Clearing


@dataclass(frozen=True, slots=True)
class Hit:
    """A live entry as answered: the serialized Value and the whole seconds it has left."""

    blob: bytes
    ttl_remaining: int


@dataclass(frozen=True, slots=True)
class Removed:
    """What a Delete or a Clear removed: how many live entries, and its commit's position."""

    entries: int
    at: At


class Store(Protocol):
    """What the servicer, the sweeper and the server ask of a node's store."""

    @property
    def is_open(self) -> bool:
        """Whether the store takes calls (between `open` and `close`)."""
        ...

    async def open(self) -> None:
        """Create the schema, load what memory may hold, join the owners."""
        ...

    async def close(self) -> None:
        """Commit every queued write, release ownership, close the database."""
        ...

    async def get(self, key: str, prefix: str | None = None) -> Hit | None:
        """The live entry of `key` (whose `prefix` the caller may have found already), or None."""
        ...

    async def mget(
        self, keys: Sequence[str], prefixes: Sequence[str] | None = None
    ) -> list[Hit | None]:
        """Entries of `keys` in request order (None per miss)."""
        ...

    async def page(self, prefix: str, after: str, limit: int, *, values: bool) -> Page:
        """Up to `limit` live entries of `prefix` with keys after `after`, in key order."""
        ...

    async def write(self, entries: Sequence[NewEntry]) -> list[At]:
        """Write validated entries (atomic per prefix); after the commit, the position of
        each prefix's commit."""
        ...

    async def write_mixed(self, ops: Sequence[NewEntry | Deletion]) -> list[tuple[Outcome, At]]:
        """Validated sets and deletes in request order; per op its outcome and the
        position of its commit. Returns after the commit."""
        ...

    async def delete(self, key: str) -> Removed:
        """Remove `key` (1 entry when a live one existed). Returns after the commit."""
        ...

    async def clear(self, prefix: str) -> Removed:
        """Delete every entry of `prefix` (the entries that were live). Returns after the commit."""
        ...

    def position(self, prefix: str) -> At:
        """Where `prefix` stands now (taken before a read, never later than the read)."""
        ...

    async def sweep(self, limit: int = 1000) -> int:
        """Delete expired rows (in chunks of `limit`); returns how many."""
        ...

    async def key_counts(self) -> dict[str, int]:
        """Live committed entries per prefix."""
        ...

    async def refresh_key_counts(self) -> None:
        """Set the per-prefix key gauges from the live committed entries."""
        ...

    async def metrics(self, *, refresh_keys: bool) -> Snapshot:
        """The counters and memory use, the key gauges refreshed first when asked."""
        ...

    async def health(self, probe_timeout: float = 1.0) -> Health:
        """Judge the store: open, database answering, membership valid, last commit fine."""
        ...
