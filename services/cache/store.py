"""The cache store: per-prefix input gates, an output gate on every reply, group commit.

State, newest first: the `overlay` (admitted, not yet committed writes and
tombstones, never evicted), then `memory` (committed entries, LRU-bounded),
then the database (the truth). A reply never reveals a pending write before its
commit, and a write is acknowledged only after its commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil

import grpc

from services.cache.admission import Admission, NewEntry, StoreLimits
from services.cache.clock import Clock
from services.cache.db import CacheDb, Row
from services.cache.gate import PrefixGates
from services.cache.group_commit import GroupCommitter
from services.cache.keys import KeyRules
from services.cache.lru import Entry, LruMemory, entry_size
from services.cache.overlay import MISS, NOT_IN_MEMORY, Commit, Overlay, Seen, settled
from services.cache.ownership import Ownership
from services.cache.readers import Readers
from services.cache.stats import CacheStats
from services.cache.tenure import Tenure
from services.cache.ttl_policy import TtlPolicy
from services.cache.writes import (
    ClearPrefix,
    Outcome,
    Put,
    Remove,
    Sweep,
    WriteOp,
    dispatch,
)
from services.common.errors import ServiceError

log = logging.getLogger(__name__)

# A read that revealed a write whose commit then failed looks again, this often.
_READ_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Hit:
    """A live entry as answered: the serialized Value and the whole seconds it has left."""

    blob: bytes
    ttl_remaining: int


class CacheStore:
    """Get/Set/Delete/MGet/MSet/Clear over memory and the database, in prefix order."""

    def __init__(
        self,
        db: CacheDb,
        *,
        keys: KeyRules,
        ttl: TtlPolicy,
        stats: CacheStats,
        ownership: Ownership,
        clock: Clock,
        limits: StoreLimits,
    ) -> None:
        self.db = db
        self.keys = keys
        self.admission = Admission(keys, ttl, limits)
        self.stats = stats
        self.ownership = ownership
        self.clock = clock
        self.limits = limits
        self.memory = LruMemory(limits.max_memory_bytes)
        self.overlay = Overlay()
        self.gates = PrefixGates(limits.max_prefix_queue)
        self.committer = GroupCommitter(
            self._apply,
            self._settle,
            max_batch=limits.commit_max_batch,
            observe=self._observe,
            refuse=self._refuse,
        )
        self.readers = Readers(db, limits.read_threads)
        self._forget = _Forget(self.memory)
        self._committed = _Committed(self)
        self.tenure = Tenure(
            leases=ownership,
            gates=self.gates,
            overlay=self.overlay,
            memory=self.memory,
            readers=self.readers,
            clock=clock,
            writer=self.committer.executor,
        )
        self.is_open = False
        self.last_commit_error: str | None = None
        self._seq = 0
        stats.watch_memory(lambda: self.memory.bytes + self.overlay.bytes)

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        """Create the schema, start committing, join the owners.

        A store alone on its database loads its newest entries into memory now;
        a store sharing it loads each prefix when it acquires its lease.
        """
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.committer.executor, self.db.create_schema)
        if self.ownership.exclusive:
            rows, complete = await self.readers.load_recent(
                self.clock.now(),
                self.limits.max_memory_bytes,
                lambda row: entry_size(row.key, row.blob),
            )
            evictions = self.memory.evictions
            for row in reversed(rows):  # oldest first, so the newest ends most recently used
                self.memory.put(row.key, row.prefix, row.blob, row.expires_at)
            if complete:
                self.memory.vouch(None, since=evictions)
        self.committer.start()
        await self.ownership.start(self.tenure)
        self.is_open = True
        log.info(
            "cache store open: %d entries in memory (%d bytes), memory holds all: %s",
            len(self.memory),
            self.memory.bytes,
            self.memory.holds_everything,
        )

    async def close(self) -> None:
        """Commit every queued write, release ownership, close the database."""
        self.is_open = False
        await self.committer.close()
        await self.ownership.stop()
        await self.tenure.stop()
        self.committer.shutdown()
        self.readers.close()
        self.db.dispose()

    def _check_open(self) -> None:
        if not self.is_open:
            raise ServiceError(
                grpc.StatusCode.UNAVAILABLE, "the cache store is not open (starting or stopping)"
            )

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str, prefix: str | None = None) -> Hit | None:
        """The live entry of `key` (whose `prefix` the caller may have found already), or None."""
        if prefix is None:
            prefix = self.keys.prefix_of(key, "key")
        self._check_open()
        answers: list[Hit | None] = [None]
        await self._read_prefix(prefix, [0], [key], answers)
        return answers[0]

    async def mget(
        self, keys: Sequence[str], prefixes: Sequence[str] | None = None
    ) -> list[Hit | None]:
        """Entries of `keys` in order (None per miss); duplicates answered each time.

        `prefixes`, when given, are the keys' prefixes as the caller validated them.
        """
        self.admission.batch(len(keys), "keys")
        if prefixes is None:
            prefixes = self.keys.prefixes(keys, "keys")
        by_prefix: dict[str, list[int]] = {}
        for index, prefix in enumerate(prefixes):
            indexes = by_prefix.get(prefix)
            if indexes is None:
                by_prefix[prefix] = [index]
            else:
                indexes.append(index)
        self._check_open()
        answers: list[Hit | None] = [None] * len(keys)
        if len(by_prefix) == 1:
            ((prefix, indexes),) = by_prefix.items()
            await self._read_prefix(prefix, indexes, keys, answers)
            return answers
        # Each prefix is its own queue: a slow prefix does not hold up the others.
        await asyncio.gather(
            *(self._read_prefix(prefix, idx, keys, answers) for prefix, idx in by_prefix.items())
        )
        return answers

    async def _read_prefix(
        self, prefix: str, indexes: list[int], keys: Sequence[str], answers: list[Hit | None]
    ) -> None:
        for _attempt in range(_READ_ATTEMPTS):
            async with self.gates.hold(prefix):
                epoch = await self.ownership.admit(prefix)
                now = self.clock.now()
                seen, waits, unknown = self._peek_all(prefix, indexes, keys, now)
                if unknown:
                    rows = await self.readers.rows(unknown, now)
                    for key in unknown:
                        seen[key] = self._fill(key, prefix, rows.get(key), epoch)
            # The output gate: what we saw may include writes not yet durable.
            if waits and not await settled(waits):
                continue  # a write we would have revealed failed: look again
            hits = 0
            for i in indexes:
                s = seen[keys[i]]
                if s.blob is not None and s.expires_at > now:
                    # Live, so more than 0 s are left and ceil() is at least 1,
                    # as remaining_seconds() would say.
                    answers[i] = Hit(s.blob, ceil(s.expires_at - now))
                    hits += 1
            # One increment per counter per call, not one per key.
            self.stats.read(prefix, hits, len(indexes) - hits)
            return
        raise ServiceError(
            grpc.StatusCode.UNAVAILABLE,
            f"writes to prefix {prefix!r} keep failing to commit; retry later",
        )

    def _peek_all(
        self, prefix: str, indexes: list[int], keys: Sequence[str], now: float
    ) -> tuple[dict[str, Seen | Entry], set[Commit], list[str]]:
        """What the overlay and memory say of each key: what they saw (a memory
        hit is its Entry, not a copy), the commits to wait for, the keys to ask
        the database about."""
        seen: dict[str, Seen | Entry] = {}
        waits: set[Commit] = set()
        unknown: list[str] = []
        peek = self.overlay.peek
        remembered = self.memory.get
        definitive = self.memory.holds_whole(prefix)
        for i in indexes:
            key = keys[i]
            if key in seen:
                continue  # a duplicate: answered from the same look
            pending = peek(key, prefix)
            if pending is not None:
                seen[key] = pending
                if pending.wait is not None:
                    waits.add(pending.wait)
                continue
            entry = remembered(key)
            if entry is not None:
                if entry.expires_at > now:
                    seen[key] = entry
                    continue
                self.memory.remove(key)  # expired: the sweeper deletes the row
                seen[key] = MISS
            elif definitive:
                seen[key] = MISS
            else:
                seen[key] = NOT_IN_MEMORY
                unknown.append(key)
        return seen, waits, unknown

    def _fill(self, key: str, prefix: str, row: Row | None, epoch: int) -> Seen:
        if row is None:
            return MISS
        # Re-admit what the database had. Under the prefix gate no write of this
        # key can be admitted meanwhile; the check keeps an older row from ever
        # landing over a newer write should that change. A lease lost (or lost and
        # regained) during the read makes the row too old to remember.
        if (
            self.ownership.current_epoch(prefix) == epoch
            and not self.overlay.touches(key, prefix)
            and key not in self.memory
        ):
            self._evicted(self.memory.put(key, prefix, row.blob, row.expires_at))
        return Seen(row.blob, row.expires_at)

    # -- writes --------------------------------------------------------------

    async def set(self, key: str, blob: bytes, ttl_seconds: int = 0) -> int:
        """Store one entry; returns the TTL applied. Returns after the commit."""
        entry = self.admission.entry(key, blob, ttl_seconds)
        await self.write([entry])
        return entry.ttl

    async def mset(self, items: Sequence[tuple[str, bytes, int]]) -> int:
        """Validate every item, then write all in one transaction; returns how many."""
        self.admission.batch(len(items), "items")
        entries = [
            self.admission.entry(key, blob, ttl, f"items[{i}].")
            for i, (key, blob, ttl) in enumerate(items)
        ]
        if entries:
            await self.write(entries)
        return len(entries)

    async def write(self, entries: Sequence[NewEntry]) -> None:
        """Write validated entries in one transaction; returns after the commit."""
        self._check_open()
        prefixes = {e.prefix for e in entries}
        async with self.gates.hold_all(prefixes):
            epochs = {p: await self.ownership.admit(p) for p in sorted(prefixes)}
            now = self.clock.now()
            ops = [
                Put(e.key, e.prefix, e.blob, now + e.ttl, self._next_seq(), epochs[e.prefix])
                for e in entries
            ]
            done = self._submit(ops)
        await asyncio.shield(done)

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when a live entry existed. Returns after the commit."""
        prefix = self.keys.prefix_of(key, "key")
        self._check_open()
        async with self.gates.hold(prefix):
            epoch = await self.ownership.admit(prefix)
            done = self._submit([Remove(key, prefix, self._next_seq(), epoch)])
        (outcome,) = await asyncio.shield(done)
        return outcome.removed > 0

    async def clear(self, prefix: str) -> int:
        """Delete every entry of `prefix`; returns how many were live."""
        self.keys.check_prefix(prefix, "prefix")
        self._check_open()
        async with self.gates.hold(prefix):
            epoch = await self.ownership.admit(prefix)
            done = self._submit([ClearPrefix(prefix, self._next_seq(), epoch)])
        (outcome,) = await asyncio.shield(done)
        return outcome.removed

    async def key_counts(self) -> dict[str, int]:
        """Live committed entries per prefix (from memory when it holds everything)."""
        now = self.clock.now()
        if self.memory.holds_everything:
            return self.memory.prefix_counts(now)
        return await self.readers.key_counts(now)

    async def probe(self) -> None:
        """Raise when the database does not answer a trivial query."""
        await self.readers.probe()

    async def sweep(self, limit: int = 1000) -> int:
        """Delete expired rows (in chunks of `limit`); returns how many."""
        self._check_open()
        total = 0
        while True:
            (outcome,) = await asyncio.shield(self.committer.submit([Sweep(limit)]))
            removed = outcome.removed
            total += removed
            if removed < limit:
                return total

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _submit(self, ops: Sequence[WriteOp]) -> asyncio.Future[list[Outcome]]:
        done = self.committer.submit(ops)
        self.overlay.admit(ops, done)
        return done

    # -- the committer's side (writer thread, then the event loop) -------------

    def _apply(self, submissions: Sequence[Sequence[WriteOp]]) -> list[list[Outcome] | None]:
        return self.db.apply(submissions, self.clock.now(), self.ownership.token)

    def _settle(self, ops: Sequence[WriteOp], outcomes: list[Outcome] | None) -> None:
        if outcomes is None:
            # The transaction may or may not have reached the disk (a lost
            # connection after COMMIT): memory no longer vouches for these keys.
            for op in ops:
                dispatch(op, self._forget)
                self.overlay.settle(op)
            self.memory.doubt()
            self.last_commit_error = "the last commit failed"
            return
        # Counted here, not in the handlers: a write whose caller gave up
        # waiting still committed.
        committed = self._committed
        for op, outcome in zip(ops, outcomes, strict=True):
            committed.outcome = outcome
            dispatch(op, committed)
            self.overlay.settle(op)
        self.last_commit_error = None

    def _refuse(self, ops: Sequence[WriteOp]) -> ServiceError:
        """A submission fenced at commit: forget it; the error says who owns the prefix."""
        fences = [fence for op in ops if (fence := op.fence) is not None]
        for op in ops:
            if op.fence is not None:
                self.overlay.settle(op)
                dispatch(op, self._forget)
        self.stats.refused(len(fences))
        # Name a prefix whose lease moved (the others of an MSet may still be ours).
        prefix, epoch = next(
            (f for f in fences if self.ownership.current_epoch(f[0]) != f[1]), fences[0]
        )
        return self.ownership.refusal(prefix, epoch)

    def _evicted(self, count: int) -> None:
        if count:
            self.stats.evicted(count)

    def _observe(self, size: int, seconds: float, ok: bool) -> None:
        self.stats.committed(size, seconds, ok)


class _Forget:
    """What memory drops of a write whose outcome is unknown or refused (a WriteHandler)."""

    __slots__ = ("_memory",)

    def __init__(self, memory: LruMemory) -> None:
        self._memory = memory

    def put(self, op: Put) -> None:
        self._memory.remove(op.key)

    def remove(self, op: Remove) -> None:
        self._memory.remove(op.key)

    def clear(self, op: ClearPrefix) -> None:
        self._memory.remove_prefix(op.prefix)

    def sweep(self, op: Sweep) -> None:
        return None


class _Committed:
    """What memory and the counters learn from a committed write (a WriteHandler)."""

    __slots__ = ("_store", "outcome")

    def __init__(self, store: CacheStore) -> None:
        self._store = store
        # The outcome of the op being handled (set by the caller before each).
        self.outcome: Outcome = Outcome()

    def put(self, op: Put) -> None:
        store = self._store
        # Remembered only by the tenure that wrote it: after a lease changed
        # hands, memory of the prefix starts again from the database.
        if store.ownership.current_epoch(op.prefix) == op.epoch:
            store._evicted(store.memory.put(op.key, op.prefix, op.blob, op.expires_at))
        else:
            store.memory.remove(op.key)
        store.stats.stored(op.prefix)

    def remove(self, op: Remove) -> None:
        self._store.memory.remove(op.key)
        self._store.stats.deleted(op.prefix)

    def clear(self, op: ClearPrefix) -> None:
        self._store.memory.remove_prefix(op.prefix)

    def sweep(self, op: Sweep) -> None:
        self._store.memory.purge_expired(self._store.clock.now())
        self._store.stats.expired_removed(self.outcome.removed)
