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
from concurrent.futures import Executor
from dataclasses import dataclass
from math import ceil
from typing import Protocol

from services.cache.clock import Clock
from services.cache.errors import CacheError, Failure
from services.cache.ownership.owners import Owned
from services.cache.storage.db import CacheDb, Row
from services.cache.storage.group_commit import GroupCommitter
from services.cache.storage.readers import Readers
from services.cache.storage.writes import (
    STORED,
    ClearPrefix,
    Outcome,
    Put,
    Remove,
    Sweep,
    WriteOp,
    dispatch,
)
from services.cache.store.admission import Admission, NewEntry, StoreLimits
from services.cache.store.gate import Hold, PrefixGates
from services.cache.store.interface import (
    DEGRADED,
    HEALTHY,
    UNAVAILABLE,
    Change,
    Clearing,
    Deletion,
    Health,
    Hit,
    Removed,
)
from services.cache.store.keys import KeyRules
from services.cache.store.lru import Entry, LruMemory, entry_size
from services.cache.store.overlay import MISS, NOT_IN_MEMORY, Commit, Overlay, Seen, settled
from services.cache.store.scan import Page, merge
from services.cache.store.stats import CacheStats, Snapshot
from services.cache.store.tenure import Leases, Tenure
from services.cache.watch.invalidations import Invalidations
from services.cache.watch.positions import At, Positions
from services.common.partition import split_run_merge

log = logging.getLogger(__name__)

# A read that revealed a write whose commit then failed looks again, this often.
_READ_ATTEMPTS = 3


class Ownership(Leases, Protocol):
    """What the store asks of the owner of its prefixes (the read-only side is
    `ownership.OwnershipView`)."""

    # True when this store is the only writer of its whole database.
    exclusive: bool
    # The lease token writes are fenced with, or None: no fencing.
    token: str | None

    async def start(self, owned: Owned) -> None:
        """Join the membership (called once the store is open)."""
        ...

    async def stop(self) -> None:
        """Give up every lease (called after the last write committed)."""
        ...

    async def admit(self, prefix: str) -> int:
        """The fencing epoch under which this node may serve `prefix` now.

        Raises NotOwner when another node owns it, CacheError UNAVAILABLE when
        ownership is uncertain.
        """
        ...

    def refusal(self, prefix: str, epoch: int) -> CacheError:
        """The error of a write to `prefix` refused because `epoch` is no longer current."""
        ...

    def problem(self) -> str | None:
        """Why this node cannot take part in ownership now, or None."""
        ...


@dataclass(frozen=True, slots=True)
class StoreState:
    """Where the store's entries and writes are at one moment (for inspection)."""

    # Committed entries in memory, and the bytes they count.
    entries: int
    memory_bytes: int
    # Admitted writes and Clears not yet committed (the overlay).
    pending: int
    # Submissions queued for the next commit, and transactions committed so far.
    queued: int
    commits: int
    # Whether memory holds every live entry of the database, or of these prefixes.
    holds_everything: bool
    whole_prefixes: frozenset[str]


class CacheStore:
    """Get/Set/Delete/MGet/MSet/Clear over memory and the database, in prefix order
    (the `Store` of one database)."""

    def __init__(
        self,
        db: CacheDb,
        *,
        keys: KeyRules,
        admission: Admission,
        stats: CacheStats,
        ownership: Ownership,
        clock: Clock,
        limits: StoreLimits,
        changes: Invalidations | None = None,
    ) -> None:
        self._db = db
        self._keys = keys
        self._admission = admission
        self._stats = stats
        self._ownership = ownership
        self._clock = clock
        self._limits = limits
        self._memory = LruMemory(limits.max_memory_bytes)
        self._overlay = Overlay()
        self._gates = PrefixGates(limits.max_prefix_queue)
        self._committer = GroupCommitter(
            self._apply,
            self._settle,
            max_batch=limits.commit_max_batch,
            observe=self._observe,
            refuse=self._refuse,
            link=db.link,
            explain=db.disk.refusal,
        )
        self._readers = Readers(db, limits.read_threads)
        self._forget = _Forget(self._memory)
        self._committed = _Committed(self._memory, self._stats, ownership, clock)
        # Near cache (#13): positions per prefix, and the changes watchers are sent.
        # With shards every store of the node feeds one hub, so Watch serves them all.
        self.changes = (
            changes if changes is not None else Invalidations(Positions(ownership.current_epoch))
        )
        self._tenure = Tenure(
            leases=ownership,
            gates=self._gates,
            overlay=self._overlay,
            memory=self._memory,
            readers=self._readers,
            clock=clock,
            writer=self._committer.executor,
            moved=self.changes.moved,
        )
        self._is_open = False
        self._disk_probe: asyncio.Task[None] | None = None
        self._last_commit_error: str | None = None
        self._seq = 0
        stats.watch_memory(lambda: self._memory.bytes + self._overlay.bytes)

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        """Create the schema, start committing, join the owners.

        A store alone on its database loads its newest entries into memory now;
        a store sharing it loads each prefix when it acquires its lease.
        """
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._committer.executor, self._db.create_schema)
        await loop.run_in_executor(self._committer.executor, self._db.disk.take_reserve)
        self._disk_probe = loop.create_task(self._db.disk.run(), name="disk-probe")
        if self._ownership.exclusive:
            rows, complete = await self._readers.load_recent(
                self._clock.now(),
                self._limits.max_memory_bytes,
                lambda row: entry_size(row.key, row.blob),
            )
            evictions = self._memory.evictions
            for row in reversed(rows):  # oldest first, so the newest ends most recently used
                self._memory.put(row.key, row.prefix, row.blob, row.expires_at)
            if complete:
                self._memory.vouch(None, since=evictions)
        self._committer.start()
        await self._ownership.start(self._tenure)
        self._is_open = True
        log.info(
            "cache store open: %d entries in memory (%d bytes), memory holds all: %s",
            len(self._memory),
            self._memory.bytes,
            self._memory.holds_everything,
        )

    async def close(self) -> None:
        """Commit every queued write, release ownership, close the database."""
        self._is_open = False
        await self._committer.close()
        await self._ownership.stop()
        await self._tenure.stop()
        if self._disk_probe is not None:
            self._disk_probe.cancel()
        self._db.disk.release()
        self._committer.shutdown()
        self._readers.close()
        self._db.dispose()

    def _check_open(self) -> None:
        if not self._is_open:
            raise CacheError(
                Failure.UNAVAILABLE, "the cache store is not open (starting or stopping)"
            )

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str, prefix: str | None = None) -> Hit | None:
        """The live entry of `key` (whose `prefix` the caller may have found already), or None."""
        if prefix is None:
            prefix = self._keys.prefix_of(key, "key")
        self._check_open()
        return (await self._read_prefix(prefix, [0], [key]))[0]

    async def mget(
        self, keys: Sequence[str], prefixes: Sequence[str] | None = None
    ) -> list[Hit | None]:
        """Entries of `keys` in order (None per miss); duplicates answered each time.

        `prefixes`, when given, are the keys' prefixes as the caller validated them.
        """
        self._admission.batch(len(keys), "keys")
        if prefixes is None:
            prefixes = self._keys.prefixes(keys, "keys")
        self._check_open()
        # Each prefix is its own queue: a slow prefix does not hold up the others.
        return await split_run_merge(
            prefixes, lambda prefix, indexes: self._read_prefix(prefix, indexes, keys)
        )

    async def _read_prefix(
        self, prefix: str, indexes: list[int], keys: Sequence[str]
    ) -> list[Hit | None]:
        """The entries of `keys[i]` for the `indexes` of one prefix, in that order."""
        for _attempt in range(_READ_ATTEMPTS):
            async with self._gates.hold(prefix):
                epoch = await self._ownership.admit(prefix)
                now = self._clock.now()
                seen, waits, unknown = self._peek_all(prefix, indexes, keys, now)
                if unknown:
                    rows = await self._readers.rows(unknown, now)
                    for key in unknown:
                        seen[key] = self._fill(key, prefix, rows.get(key), epoch)
            # The output gate: what we saw may include writes not yet durable.
            if waits and not await settled(waits):
                continue  # a write we would have revealed failed: look again
            answers: list[Hit | None] = []
            hits = 0
            for i in indexes:
                s = seen[keys[i]]
                if s.blob is not None and s.expires_at > now:
                    # Live, so more than 0 s are left and ceil() is at least 1,
                    # as remaining_seconds() would say.
                    answers.append(Hit(s.blob, ceil(s.expires_at - now)))
                    hits += 1
                else:
                    answers.append(None)
            # One increment per counter per call, not one per key.
            self._stats.read(prefix, hits, len(indexes) - hits)
            return answers
        raise _keeps_failing(prefix)

    def _peek_all(
        self, prefix: str, indexes: list[int], keys: Sequence[str], now: float
    ) -> tuple[dict[str, Seen | Entry], set[Commit], list[str]]:
        """What the overlay and memory say of each key: what they saw (a memory
        hit is its Entry, not a copy), the commits to wait for, the keys to ask
        the database about."""
        seen: dict[str, Seen | Entry] = {}
        waits: set[Commit] = set()
        unknown: list[str] = []
        peek = self._overlay.peek
        remembered = self._memory.get
        definitive = self._memory.holds_whole(prefix)
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
                self._memory.remove(key)  # expired: the sweeper deletes the row
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
            self._ownership.current_epoch(prefix) == epoch
            and not self._overlay.touches(key, prefix)
            and key not in self._memory
        ):
            self._evicted(self._memory.put(key, prefix, row.blob, row.expires_at))
        return Seen(row.blob, row.expires_at)

    async def page(self, prefix: str, after: str, limit: int, *, values: bool) -> Page:
        """Up to `limit` live entries of `prefix` with keys after `after`, in key order
        (their values too when asked). The prefix's gate is held for this page only."""
        self._keys.check_prefix(prefix, "prefix")
        self._check_open()
        for _attempt in range(_READ_ATTEMPTS):
            async with self._gates.hold(prefix):
                await self._ownership.admit(prefix)
                now = self._clock.now()
                rows = await self._readers.page(prefix, after, limit, now, values=values)
                page = merge(
                    rows, self._overlay.pending_of(prefix), after=after, limit=limit, now=now
                )
            # The output gate, as for reads: nothing listed before it is durable.
            if not page.waits or await settled(page.waits):
                return page
        raise _keeps_failing(prefix)

    # -- writes --------------------------------------------------------------

    async def set(self, key: str, blob: bytes, ttl_seconds: int = 0) -> int:
        """Store one entry; returns the TTL applied. Returns after the commit."""
        entry = self._admission.entry(key, blob, ttl_seconds)
        await self.write([entry])
        return entry.ttl

    async def mset(self, items: Sequence[tuple[str, bytes, int]]) -> int:
        """Validate every item, then write all in one transaction; returns how many."""
        self._admission.batch(len(items), "items")
        entries = [
            self._admission.entry(key, blob, ttl, f"items[{i}].")
            for i, (key, blob, ttl) in enumerate(items)
        ]
        if entries:
            await self.write(entries)
        return len(entries)

    async def write(self, entries: Sequence[NewEntry]) -> list[At]:
        """Write validated entries in one transaction; returns after the commit, with
        the position of the commit per prefix written."""
        return list({at.prefix: at for _, at in await self._commit(entries)}.values())

    async def write_mixed(self, ops: Sequence[NewEntry | Deletion]) -> list[tuple[Outcome, At]]:
        """Validated sets and deletes (#12) in ONE submission, in order (so ops on one
        key apply in request order); per op its outcome and the position of its commit.
        Returns after the commit."""
        return await self._commit(ops)

    async def delete(self, key: str) -> Removed:
        """Remove `key` (1 entry when a live one existed). Returns after the commit."""
        ((outcome, at),) = await self._commit([Deletion(key, self._keys.prefix_of(key, "key"))])
        return Removed(outcome.removed, at)

    async def clear(self, prefix: str) -> Removed:
        """Delete every entry of `prefix` (the entries that were live). Returns after the commit."""
        self._keys.check_prefix(prefix, "prefix")
        ((outcome, at),) = await self._commit([Clearing(prefix)])
        return Removed(outcome.removed, at)

    async def _commit(self, changes: Sequence[Change]) -> list[tuple[Outcome, At]]:
        """The one write path: admit `changes` under their prefixes' gates and leases,
        submit them as one group, and after the commit, per change its outcome and
        its commit's position."""
        self._check_open()
        prefixes = {c.prefix for c in changes}
        async with self._gates.hold_all(prefixes):
            epochs = {p: await self._ownership.admit(p) for p in sorted(prefixes)}
            now = self._clock.now()
            ops = [self._op(change, now, epochs[change.prefix]) for change in changes]
            done = self._submit(ops)
        outcomes = await asyncio.shield(done)
        # Each op's `commit_seq` is written by `Invalidations.committed` in `_settle`,
        # which runs before `done` resolves: only now is the position known.
        return [
            (outcome, At(op.prefix, op.epoch, op.commit_seq))
            for outcome, op in zip(outcomes, ops, strict=True)
        ]

    def _op(self, change: Change, now: float, epoch: int) -> Put | Remove | ClearPrefix:
        """The write operation of one admitted change."""
        if isinstance(change, NewEntry):
            return Put(
                change.key, change.prefix, change.blob, now + change.ttl, self._next_seq(), epoch
            )
        if isinstance(change, Deletion):
            return Remove(change.key, change.prefix, self._next_seq(), epoch)
        return ClearPrefix(change.prefix, self._next_seq(), epoch)

    def position(self, prefix: str) -> At:
        """Where `prefix` stands now (taken before a read, never later than the read)."""
        return self.changes.positions.current(prefix)

    async def key_counts(self) -> dict[str, int]:
        """Live committed entries per prefix (from memory when it holds everything)."""
        now = self._clock.now()
        if self._memory.holds_everything:
            return self._memory.prefix_counts(now)
        return await self._readers.key_counts(now)

    async def sweep(self, limit: int = 1000) -> int:
        """Delete expired rows (in chunks of `limit`); returns how many."""
        self._check_open()
        if self._db.disk.full:
            return 0  # the space a sweep's deletions write is the heartbeats'
        total = 0
        while True:
            (outcome,) = await asyncio.shield(self._committer.submit([Sweep(limit)]))
            removed = outcome.removed
            total += removed
            if removed < limit:
                return total

    async def refresh_key_counts(self) -> None:
        """Set the per-prefix key gauges from the live committed entries."""
        self._stats.set_keys(await self.key_counts())

    async def metrics(self, *, refresh_keys: bool) -> Snapshot:
        """The counters and memory use, the key gauges refreshed first when asked."""
        if refresh_keys:
            await self.refresh_key_counts()
        return self._stats.snapshot(
            self._memory.bytes + self._overlay.bytes,
            self._limits.max_memory_bytes,
            self.memory_by_prefix(),
        )

    def memory_by_prefix(self) -> dict[str, int]:
        """Bytes the in-memory layer holds per prefix (committed entries)."""
        return self._memory.prefix_bytes()

    @property
    def is_open(self) -> bool:
        """Whether the store takes calls (between `open` and `close`)."""
        return self._is_open

    async def health(self, probe_timeout: float = 1.0) -> Health:
        """Judge the store: open, database answering, membership valid, last commit fine."""
        if not self._is_open:
            return Health(UNAVAILABLE, "the store is not open (starting or stopping)")
        try:
            await asyncio.wait_for(self._readers.probe(), probe_timeout)
        except TimeoutError:
            return Health(DEGRADED, f"the database did not answer within {probe_timeout:g}s")
        except Exception as exc:
            return Health(DEGRADED, f"the database is unreachable: {type(exc).__name__}")
        problem = self._ownership.problem()
        if problem is not None:
            # Serving nothing it does not already hold: its prefixes go to other nodes.
            return Health(DEGRADED, f"no valid membership: {problem}")
        if self._last_commit_error is not None:
            return Health(DEGRADED, self._last_commit_error)
        return Health(HEALTHY)

    # -- inspection (tests, debugging): read-only views of the insides -------

    def state(self) -> StoreState:
        """How many entries, writes and commits are where, now."""
        return StoreState(
            entries=len(self._memory),
            memory_bytes=self._memory.bytes,
            pending=len(self._overlay),
            queued=self._committer.queued,
            commits=self._committer.commits,
            holds_everything=self._memory.holds_everything,
            whole_prefixes=self._memory.whole_prefixes(),
        )

    def remembered(self, key: str) -> Entry | None:
        """The committed entry memory holds for `key` (no database read), or None."""
        return self._memory.peek(key)

    def hold(self, prefix: str) -> Hold:
        """The input gate of `prefix`: held, no other call on the prefix starts."""
        return self._gates.hold(prefix)

    @property
    def writer(self) -> Executor:
        """The writer thread: a job queued here runs between commits, never during one."""
        return self._committer.executor

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _submit(self, ops: Sequence[WriteOp]) -> asyncio.Future[list[Outcome]]:
        self._db.disk.check()  # a full disk refuses before anything is queued
        done = self._committer.submit(ops)
        self._overlay.admit(ops, done)
        return done

    # -- the committer's side (writer thread, then the event loop) -------------

    def _apply(self, submissions: Sequence[Sequence[WriteOp]]) -> list[list[Outcome] | None]:
        return self._db.apply(submissions, self._clock.now(), self._ownership.token)

    def _settle(self, ops: Sequence[WriteOp], outcomes: list[Outcome] | None) -> None:
        # Watchers hear of the group before any writer is answered; a failed commit
        # may still have reached the disk, so its keys are invalidated too.
        self.changes.committed(ops)
        if outcomes is None:
            # The transaction may or may not have reached the disk (a lost
            # connection after COMMIT): memory no longer vouches for these keys.
            for op in ops:
                dispatch(op, self._forget)
                self._overlay.settle(op)
            self._memory.doubt()
            self._last_commit_error = "the last commit failed"
            return
        # Counted here, not in the handlers: a write whose caller gave up
        # waiting still committed.
        committed = self._committed
        for op, outcome in zip(ops, outcomes, strict=True):
            committed.outcome = outcome
            dispatch(op, committed)
            self._overlay.settle(op)
        self._last_commit_error = None

    def _refuse(self, ops: Sequence[WriteOp]) -> CacheError:
        """A submission fenced at commit: forget it; the error says who owns the prefix."""
        fences = [fence for op in ops if (fence := op.fence) is not None]
        for op in ops:
            if op.fence is not None:
                self._overlay.settle(op)
                dispatch(op, self._forget)
        self._stats.refused(len(fences))
        # Name a prefix whose lease moved (the others of an MSet may still be ours).
        prefix, epoch = next(
            (f for f in fences if self._ownership.current_epoch(f[0]) != f[1]), fences[0]
        )
        return self._ownership.refusal(prefix, epoch)

    def _evicted(self, count: int) -> None:
        if count:
            self._stats.evicted(count)

    def _observe(self, size: int, seconds: float, ok: bool) -> None:
        self._stats.committed(size, seconds, ok)


def _keeps_failing(prefix: str) -> CacheError:
    """A read gave up: every look found a write that then failed to commit."""
    return CacheError(
        Failure.UNAVAILABLE, f"writes to prefix {prefix!r} keep failing to commit; retry later"
    )


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

    __slots__ = ("_clock", "_memory", "_ownership", "_stats", "outcome")

    def __init__(
        self, memory: LruMemory, stats: CacheStats, ownership: Ownership, clock: Clock
    ) -> None:
        self._memory = memory
        self._stats = stats
        self._ownership = ownership
        self._clock = clock
        # The outcome of the op being handled (set by the caller before each).
        self.outcome: Outcome = STORED

    def put(self, op: Put) -> None:
        # Remembered only by the tenure that wrote it: after a lease changed
        # hands, memory of the prefix starts again from the database.
        if self._ownership.current_epoch(op.prefix) == op.epoch:
            evicted = self._memory.put(op.key, op.prefix, op.blob, op.expires_at)
            if evicted:
                self._stats.evicted(evicted)
        else:
            self._memory.remove(op.key)
        self._stats.stored(op.prefix)

    def remove(self, op: Remove) -> None:
        self._memory.remove(op.key)
        self._stats.deleted(op.prefix)

    def clear(self, op: ClearPrefix) -> None:
        self._memory.remove_prefix(op.prefix)

    def sweep(self, op: Sweep) -> None:
        self._memory.purge_expired(self._clock.now())
        self._stats.expired_removed(self.outcome.removed)
