"""Prefixes sharded over several databases (CACHE_DB_URLS): one store cell per database.

Each prefix has one home database, chosen by rendezvous hashing over the shards'
identities (`home`). A cell is what one database needs on its own: a CacheDb, a
CacheStore (with its group committer) and a LeaseOwnership heartbeating in that
database. So every fenced transaction stays inside one database, a node is a
member in every shard, and a prefix's owner is whoever holds its lease in its
home. `ShardedStore` (here) and `ShardedOwnership` dispatch by prefix and offer the
servicer and the router the same interfaces as one store (`Store`) and its owner.

The memory bound (CACHE_MAX_MEMORY_BYTES) is split evenly between the cells:
each store's LRU is bounded on its own, so one hot shard cannot evict another's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from services.cache.clock import Clock
from services.cache.ownership.leases import LeaseOwnership
from services.cache.shards.homes import Homes, foreign, stranded
from services.cache.storage.db import CacheDb
from services.cache.storage.writes import Outcome
from services.cache.store.admission import NewEntry
from services.cache.store.cache_store import CacheStore
from services.cache.store.interface import (
    DEGRADED,
    HEALTHY,
    UNAVAILABLE,
    Deletion,
    Health,
    Hit,
    Removed,
)
from services.cache.store.scan import Page
from services.cache.store.stats import CacheStats, Snapshot
from services.cache.watch.positions import At
from services.common.partition import run_parts, split, split_run_merge

R = TypeVar("R")


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
    """The `Store` over one CacheStore per shard: a call on one prefix goes to its
    home's store (`home`), a batch is split by home (`_across`), upkeep runs in every
    shard (`_every`)."""

    def __init__(
        self,
        cells: Sequence[Cell],
        homes: Homes,
        *,
        stats: CacheStats,
        clock: Clock,
        prefix_of: Callable[[str], str],
        max_memory_bytes: int,
    ) -> None:
        self.cells = list(cells)
        self._homes = homes
        self._stats = stats
        self._clock = clock
        self._prefix_of = prefix_of
        self._max_memory_bytes = max_memory_bytes
        # Each store pointed this gauge at itself alone; it counts every cell.
        stats.watch_memory(lambda: sum(c.store.state().memory_bytes for c in self.cells))

    def cell(self, prefix: str) -> Cell:
        """The cell of `prefix`'s home database."""
        return self.cells[self._homes.index(prefix)]

    def home(self, prefix: str) -> CacheStore:
        """The store of `prefix`'s home database: every call on `prefix` goes there."""
        return self.cells[self._homes.index(prefix)].store

    async def _across(
        self,
        prefixes: Sequence[str],
        run: Callable[[CacheStore, list[int]], Awaitable[Sequence[R]]],
    ) -> list[R]:
        """`run(store, indexes)` for the items of each shard, together; per item its
        result, in request order (a key's items share its shard, so keep their order)."""
        return await split_run_merge(
            [self._homes.index(p) for p in prefixes],
            lambda index, indexes: run(self.cells[index].store, indexes),
        )

    async def _every(self, call: Callable[[CacheStore], Awaitable[R]]) -> list[R | BaseException]:
        """`call` on every shard's store, together; per shard its result or its error."""
        return await asyncio.gather(*(call(c.store) for c in self.cells), return_exceptions=True)

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Check that no shard holds data homed elsewhere, then open every cell."""
        found = []
        for cell in self.cells:
            await asyncio.to_thread(cell.db.create_schema)
            prefixes = await asyncio.to_thread(
                foreign, cell.db, cell.index, self._homes.identities, self._clock.now()
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
        for result in await self._every(lambda store: store.close()):
            if isinstance(result, BaseException):
                raise result

    @property
    def is_open(self) -> bool:
        """Whether every cell takes calls."""
        return all(c.store.is_open for c in self.cells)

    # -- data: one prefix at its home, a batch split by home ---------------------

    async def get(self, key: str, prefix: str | None = None) -> Hit | None:
        """As CacheStore.get, in `key`'s home shard."""
        if prefix is None:
            prefix = self._prefix_of(key)
        return await self.home(prefix).get(key, prefix)

    async def delete(self, key: str) -> Removed:
        """As CacheStore.delete, in `key`'s home shard."""
        return await self.home(self._prefix_of(key)).delete(key)

    async def clear(self, prefix: str) -> Removed:
        """As CacheStore.clear, in the prefix's home shard."""
        return await self.home(prefix).clear(prefix)

    async def page(self, prefix: str, after: str, limit: int, *, values: bool) -> Page:
        """As CacheStore.page, in the prefix's home shard."""
        return await self.home(prefix).page(prefix, after, limit, values=values)

    def position(self, prefix: str) -> At:
        """As CacheStore.position, in the prefix's home shard."""
        return self.home(prefix).position(prefix)

    async def mget(
        self, keys: Sequence[str], prefixes: Sequence[str] | None = None
    ) -> list[Hit | None]:
        """As CacheStore.mget: each shard reads its part, answers in request order."""
        if prefixes is None:
            prefixes = [self._prefix_of(k) for k in keys]
        known = prefixes
        return await self._across(
            known,
            lambda store, ix: store.mget([keys[i] for i in ix], [known[i] for i in ix]),
        )

    async def write_mixed(self, ops: Sequence[NewEntry | Deletion]) -> list[tuple[Outcome, At]]:
        """As CacheStore.write_mixed, per shard; a key's ops share its shard, so they
        keep their order."""
        return await self._across(
            [op.prefix for op in ops], lambda store, ix: store.write_mixed([ops[i] for i in ix])
        )

    async def write(self, entries: Sequence[NewEntry]) -> list[At]:
        """As CacheStore.write: one transaction per shard (atomic per prefix, as an
        MSet over several owners already is); the position of each prefix's commit."""
        parts = split(self._homes.index(e.prefix) for e in entries)
        written = await run_parts(
            self.cells[index].store.write([entries[i] for i in indexes])
            for index, indexes in parts.items()
        )
        return [at for positions in written for at in positions]

    # -- upkeep, metrics, health: every shard ------------------------------------

    async def sweep(self, limit: int = 1000) -> int:
        """Delete expired rows in every reachable shard; a shard that is down is skipped."""
        results = await self._every(lambda store: store.sweep(limit))
        return sum(r for r in results if isinstance(r, int))

    async def key_counts(self) -> dict[str, int]:
        """Live entries per prefix over the shards that answer."""
        counts: dict[str, int] = {}
        for result in await self._every(lambda store: store.key_counts()):
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
