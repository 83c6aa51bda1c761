"""Prefixes sharded over several databases (CACHE_DB_URLS): one store cell per database.

Each prefix has one home database, chosen by rendezvous hashing over the shards'
identities (`home`). A cell is what one database needs on its own: a CacheDb, a
CacheStore (with its group committer) and a LeaseOwnership heartbeating in that
database. So every fenced transaction stays inside one database, a node is a
member in every shard, and a prefix's owner is whoever holds its lease in its
home. `ShardedStore` and `ShardedOwnership` dispatch by prefix and offer the
servicer and the router the same narrow interface as one store and its owner.

The memory bound (CACHE_MAX_MEMORY_BYTES) is split evenly between the cells:
each store's LRU is bounded on its own, so one hot shard cannot evict another's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from services.cache.admission import NewEntry
from services.cache.clock import Clock
from services.cache.db import CacheDb
from services.cache.errors import CacheError, Failure
from services.cache.ownership.lease_metrics import OwnershipMetrics
from services.cache.ownership.leases import LeaseOwnership
from services.cache.ownership.membership import preferred
from services.cache.ownership.owners import MemberInfo, OwnerInfo
from services.cache.positions import At
from services.cache.scan import Page
from services.cache.stats import CacheStats, Snapshot
from services.cache.store import (
    DEGRADED,
    HEALTHY,
    UNAVAILABLE,
    CacheStore,
    Deletion,
    Health,
    Hit,
)
from services.cache.writes import Outcome

REBALANCE_TOOL = "python -m services.cache.rebalance --from OLD_URLS --to NEW_URLS"


def home(prefix: str, identities: Sequence[str]) -> int:
    """The index of `prefix`'s home among the shards: the rendezvous winner.

    Adding a shard moves only the prefixes it wins (about 1/n of them).
    """
    winner = preferred(prefix, identities)
    assert winner is not None, "no shards"
    return identities.index(winner)


class StrandedDataError(CacheError):
    """A database holds live entries of prefixes whose home is another shard."""


def foreign(db: CacheDb, index: int, identities: Sequence[str], now: float) -> list[str]:
    """The prefixes with live entries in shard `index` whose home is another shard."""
    return sorted(p for p in db.count_by_prefix(now) if home(p, identities) != index)


def stranded(found: Sequence[tuple[str, list[str]]]) -> StrandedDataError:
    """The refusal to start over databases holding prefixes homed elsewhere: the list
    changed without moving them, and serving now would hide them."""
    total = sum(len(prefixes) for _, prefixes in found)
    where = "; ".join(
        f"{name}: {', '.join(repr(p) for p in prefixes[:3])}{' ...' if len(prefixes) > 3 else ''}"
        for name, prefixes in found
    )
    return StrandedDataError(
        Failure.UNAVAILABLE,
        f"CACHE_DB_URLS: {total} prefixes have live entries in a database that the current "
        f"list does not make their home ({where}): the list changed without moving them; "
        f"stop every cache and run `{REBALANCE_TOOL}` (docs/scaling.md, changing the shard list)",
    )


@dataclass(frozen=True, slots=True)
class Cell:
    """One shard: its database, the store over it and the leases in it."""

    index: int
    db: CacheDb
    store: CacheStore
    ownership: LeaseOwnership

    @property
    def name(self) -> str:
        """How logs and Health name the shard (never with its password)."""
        return f"shard {self.index} ({self.db.link.name})"


class ShardedStore:
    """The CacheStore interface the servicer and sweeper use, over one store per shard."""

    def __init__(
        self,
        cells: Sequence[Cell],
        identities: Sequence[str],
        *,
        stats: CacheStats,
        metrics: OwnershipMetrics,
        clock: Clock,
        prefix_of: Callable[[str], str],
        max_memory_bytes: int,
    ) -> None:
        self.cells = list(cells)
        self._identities = list(identities)
        self._stats = stats
        self._clock = clock
        self._prefix_of = prefix_of
        self._max_memory_bytes = max_memory_bytes
        self._homes: dict[str, Cell] = {}
        # Each store pointed these gauges at itself alone; they count every cell.
        stats.watch_memory(lambda: sum(c.store.state().memory_bytes for c in self.cells))
        metrics.watch(
            lambda: sum(len(c.ownership.held_prefixes()) for c in self.cells),
            lambda: sum(1 for m in merge_members(self.cells) if m.alive),
        )

    def cell(self, prefix: str) -> Cell:
        """The cell of `prefix`'s home database."""
        cell = self._homes.get(prefix)
        if cell is None:
            cell = self._homes[prefix] = self.cells[home(prefix, self._identities)]
        return cell

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Check that no shard holds data homed elsewhere, then open every cell."""
        found = []
        for cell in self.cells:
            await asyncio.to_thread(cell.db.create_schema)
            prefixes = await asyncio.to_thread(
                foreign, cell.db, cell.index, self._identities, self._clock.now()
            )
            if prefixes:
                found.append((cell.name, prefixes))
        if found:
            raise stranded(found)
        opened: list[Cell] = []
        try:
            for cell in self.cells:
                await cell.store.open()
                opened.append(cell)
        except BaseException:
            await asyncio.gather(*(c.store.close() for c in opened), return_exceptions=True)
            raise

    async def close(self) -> None:
        """Close every cell (each commits what it queued first)."""
        results = await asyncio.gather(
            *(c.store.close() for c in self.cells), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    @property
    def is_open(self) -> bool:
        """Whether every cell takes calls."""
        return all(c.store.is_open for c in self.cells)

    # -- data ------------------------------------------------------------------

    async def get(self, key: str, prefix: str | None = None) -> Hit | None:
        """As CacheStore.get, in `key`'s home shard."""
        if prefix is None:
            prefix = self._prefix_of(key)
        return await self.cell(prefix).store.get(key, prefix)

    async def mget(
        self, keys: Sequence[str], prefixes: Sequence[str] | None = None
    ) -> list[Hit | None]:
        """As CacheStore.mget: each shard reads its part, answers in request order."""
        if prefixes is None:
            prefixes = [self._prefix_of(k) for k in keys]
        parts = self._split(prefixes)
        answers: list[Hit | None] = [None] * len(keys)

        async def read(cell: Cell, indexes: list[int]) -> None:
            hits = await cell.store.mget([keys[i] for i in indexes], [prefixes[i] for i in indexes])
            for i, hit in zip(indexes, hits, strict=True):
                answers[i] = hit

        await _all(read(cell, idx) for cell, idx in parts)
        return answers

    async def write(self, entries: Sequence[NewEntry]) -> list[At]:
        """As CacheStore.write: one transaction per shard (atomic per prefix, as an
        MSet over several owners already is); the position of each prefix's commit."""
        parts = self._split([e.prefix for e in entries])
        positions: list[At] = []

        async def part(cell: Cell, indexes: list[int]) -> None:
            positions.extend(await cell.store.write([entries[i] for i in indexes]))

        await _all(part(cell, idx) for cell, idx in parts)
        return positions

    async def write_mixed(self, ops: Sequence[NewEntry | Deletion]) -> list[tuple[Outcome, At]]:
        """As CacheStore.write_mixed, per shard; a key's ops share its shard, so they
        keep their order."""
        parts = self._split([op.prefix for op in ops])
        answers: list[tuple[Outcome, At] | None] = [None] * len(ops)

        async def part(cell: Cell, indexes: list[int]) -> None:
            done = await cell.store.write_mixed([ops[i] for i in indexes])
            for i, answer in zip(indexes, done, strict=True):
                answers[i] = answer

        await _all(part(cell, idx) for cell, idx in parts)
        return [a for a in answers if a is not None]

    async def delete_at(self, key: str) -> tuple[bool, At]:
        """As CacheStore.delete_at."""
        return await self.cell(self._prefix_of(key)).store.delete_at(key)

    async def clear_at(self, prefix: str) -> tuple[int, At]:
        """As CacheStore.clear_at."""
        return await self.cell(prefix).store.clear_at(prefix)

    def position(self, prefix: str) -> At:
        """As CacheStore.position, in the prefix's home shard."""
        return self.cell(prefix).store.position(prefix)

    async def page(self, prefix: str, after: str, limit: int, *, values: bool) -> Page:
        """As CacheStore.page, in the prefix's home shard."""
        return await self.cell(prefix).store.page(prefix, after, limit, values=values)

    async def set(self, key: str, blob: bytes, ttl_seconds: int = 0) -> int:
        """As CacheStore.set."""
        return await self.cell(self._prefix_of(key)).store.set(key, blob, ttl_seconds)

    async def delete(self, key: str) -> bool:
        """As CacheStore.delete."""
        return await self.cell(self._prefix_of(key)).store.delete(key)

    async def clear(self, prefix: str) -> int:
        """As CacheStore.clear."""
        return await self.cell(prefix).store.clear(prefix)

    def _split(self, prefixes: Sequence[str]) -> list[tuple[Cell, list[int]]]:
        by_cell: dict[int, tuple[Cell, list[int]]] = {}
        for i, prefix in enumerate(prefixes):
            cell = self.cell(prefix)
            by_cell.setdefault(cell.index, (cell, []))[1].append(i)
        return list(by_cell.values())

    # -- upkeep, metrics, health -------------------------------------------------

    async def sweep(self, limit: int = 1000) -> int:
        """Delete expired rows in every reachable shard; a shard that is down is skipped."""
        results = await asyncio.gather(
            *(c.store.sweep(limit) for c in self.cells), return_exceptions=True
        )
        return sum(r for r in results if isinstance(r, int))

    async def key_counts(self) -> dict[str, int]:
        """Live entries per prefix over the shards that answer."""
        counts: dict[str, int] = {}
        results = await asyncio.gather(
            *(c.store.key_counts() for c in self.cells), return_exceptions=True
        )
        for result in results:
            if isinstance(result, dict):
                counts.update(result)  # a prefix lives in one shard: no overlap
        return counts

    async def refresh_key_counts(self) -> None:
        """Set the per-prefix key gauges once, from every shard's counts."""
        self._stats.set_keys(await self.key_counts())

    async def metrics(self, *, refresh_keys: bool) -> Snapshot:
        """The shared counters, memory summed over the cells."""
        if refresh_keys:
            await self.refresh_key_counts()
        memory = 0
        for cell in self.cells:
            memory += (await cell.store.metrics(refresh_keys=False)).memory_bytes
        per_prefix: dict[str, int] = {}
        for cell in self.cells:
            per_prefix.update(cell.store.memory_by_prefix())  # a prefix lives in one shard
        snapshot = self._stats.snapshot(memory, self._max_memory_bytes, per_prefix)
        return dataclasses.replace(snapshot, memory_bytes=memory)

    async def health(self, probe_timeout: float = 1.0) -> Health:
        """Healthy when every shard is; else degraded, naming each shard and why
        (its prefixes are unavailable, the others serve); unavailable when none serves."""
        verdicts = await asyncio.gather(*(c.store.health(probe_timeout) for c in self.cells))
        bad = [(c, v) for c, v in zip(self.cells, verdicts, strict=True) if v.status != HEALTHY]
        if not bad:
            return Health(HEALTHY)
        reason = "; ".join(f"{c.name}: {v.reason}" for c, v in bad)
        if all(v.status == UNAVAILABLE for _, v in bad) and len(bad) == len(self.cells):
            return Health(UNAVAILABLE, reason)
        return Health(DEGRADED, f"{len(bad)} of {len(self.cells)} shards impaired: {reason}")


class ShardedOwnership:
    """The OwnershipView of a sharded node: a prefix's owner is the holder of its lease
    in its home shard; members are the union of every shard's."""

    def __init__(self, store: ShardedStore) -> None:
        self._store = store

    def route(self, prefix: str) -> OwnerInfo | None:
        """As LeaseOwnership.route, in `prefix`'s home shard."""
        return self._store.cell(prefix).ownership.route(prefix)

    def owner_of(self, prefix: str) -> OwnerInfo:
        """As LeaseOwnership.owner_of, in `prefix`'s home shard."""
        return self._store.cell(prefix).ownership.owner_of(prefix)

    def members(self) -> list[MemberInfo]:
        """Every node any shard knows (alive if alive in any)."""
        return merge_members(self._store.cells)

    def owners(self) -> list[OwnerInfo]:
        """The leases every shard knows (a prefix's lease lives in one shard only)."""
        found = [o for c in self._store.cells for o in c.ownership.owners()]
        return sorted(found, key=lambda o: o.prefix)


def merge_members(cells: Sequence[Cell]) -> list[MemberInfo]:
    """Members by node id over the shards: the newest heartbeat, alive if alive anywhere."""
    merged: dict[str, MemberInfo] = {}
    for cell in cells:
        for m in cell.ownership.members():
            seen = merged.get(m.node_id)
            if seen is None:
                merged[m.node_id] = m
            else:
                newest = m if m.heartbeat_at > seen.heartbeat_at else seen
                merged[m.node_id] = dataclasses.replace(newest, alive=seen.alive or m.alive)
    return [merged[node] for node in sorted(merged)]


async def _all(jobs: Iterable[Awaitable[None]]) -> None:
    """Run the jobs together; raise the first failure after all have finished (a part
    that succeeded stays written, as with any MSet spanning owners)."""
    tasks = list(jobs)
    if len(tasks) == 1:
        await tasks[0]
        return
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
