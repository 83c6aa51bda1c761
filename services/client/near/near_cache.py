"""The client's near cache: hot entries in this process's memory, served only while
the owner's Watch stream vouches for their prefix (docs/near-cache.md).

A hit is served while (1) the entry's TTL has not passed and (2) its prefix is
trusted: the last heartbeat (or start) of the prefix's stream, stamped by the
owner, is younger than min(the owner's lease validity, CACHE_NEAR_MAX_STALENESS_MS).
Every invalidation sent before that stamp has been applied, so a value replaced
by a write acknowledged more than the bound before the read is never served.
Otherwise the caller goes to the server, whose reads are per-key linearizable.

This module decides; storage.py holds, trust.py keeps each prefix's stream state
and deadline, copies.py protects values from callers, metrics.py counts.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry

from services.client.near.copies import freeze, stored_size, thaw
from services.client.near.metrics import NearMetrics
from services.client.near.storage import ENTRY_OVERHEAD, Entry, Storage
from services.client.near.trust import DEFAULT_MAX_STALENESS_MS, PrefixState, TrustClock
from services.common.json_value import JSON


class Position(Protocol):
    """Where a commit stands in its prefix's history (cache_pb2.Position has this shape)."""

    @property
    def prefix(self) -> str: ...
    @property
    def epoch(self) -> int: ...
    @property
    def sequence(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Ticket:
    """Taken when a read starts: what an install checks the read's reply against."""

    flushes: int
    started: float


class Install(enum.Enum):
    """What became of a read's reply offered to the near cache."""

    HELD = "held"
    REFUSED = "refused"  # something newer was applied meanwhile, or it cannot be held
    UNWATCHED = "unwatched"  # no stream for its prefix yet: open one, and hold later reads


class NearCache:
    """A byte-bounded LRU of entries, each trusted through its prefix's stream."""

    def __init__(
        self,
        max_bytes: int,
        max_staleness_ms: int = DEFAULT_MAX_STALENESS_MS,
        *,
        registry: CollectorRegistry | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_staleness_ms = max_staleness_ms
        self._clock = TrustClock(max_staleness_ms, monotonic=monotonic, wall=wall)
        self._monotonic = monotonic
        self._storage: Storage[PrefixState] = Storage(max_bytes)
        self._prefixes: dict[str, PrefixState] = {}
        # Flushes so far: a read that started before one may not be installed.
        self._flushes = 0
        self.metrics = NearMetrics(registry)
        self.metrics.bytes.set_function(lambda: self._storage.bytes)
        self.metrics.clock_offset.set_function(lambda: self._clock.offset.estimate)

    @property
    def bytes(self) -> int:
        """Bytes held (keys, values, overhead)."""
        return self._storage.bytes

    # -- reads ---------------------------------------------------------------

    def lookup(self, key: str) -> tuple[JSON, int] | None:
        """(value, whole seconds left) of a servable entry, else None (go to the server)."""
        entry = self._storage.get(key)
        if entry is not None:
            now = self._monotonic()
            if now < entry.group.valid_until and now < entry.expires:
                self._storage.touch(key)
                self.metrics.hits.inc()
                value = entry.value if entry.blob is None else thaw(entry.blob)
                return value, max(1, int(entry.expires - now))
            if now >= entry.expires:
                self._storage.drop(key)
        self.metrics.misses.inc()
        return None

    def ticket(self) -> Ticket:
        """Take before sending a read whose reply may be installed."""
        return Ticket(self._flushes, self._monotonic())

    def install(
        self, key: str, value: JSON, ttl_remaining: int, at: Position, ticket: Ticket
    ) -> Install:
        """Hold what a read started at `ticket` found, unless something newer was applied
        meanwhile: the read/invalidate race is settled here, by position."""
        state = self._prefixes.get(at.prefix) if at.prefix else None
        if state is None:
            if at.prefix:
                self._prefixes[at.prefix] = PrefixState()
                return Install.UNWATCHED
            return Install.REFUSED
        if ticket.flushes != self._flushes or not state.accepts(key, at.epoch, at.sequence):
            return Install.REFUSED
        # The server rounds the TTL up: a second less, from when the read began.
        expires = ticket.started + ttl_remaining - 1
        if expires <= self._monotonic():
            return Install.REFUSED
        blob = freeze(value)
        size = ENTRY_OVERHEAD + len(key) + stored_size(value, blob)
        entry = Entry(value if blob is None else None, blob, expires, size, state)
        return Install.HELD if self._storage.put(key, entry) else Install.REFUSED

    # -- this client's own writes (read-your-writes) --------------------------

    def forget(self, key: str) -> None:
        """Drop `key` before writing it: the write's outcome may be unknown."""
        self._storage.drop(key)

    def written(self, keys: Iterable[str], at: Position) -> None:
        """Our write of `keys` committed at `at`: no read older than it may be installed."""
        state = self._prefixes.get(at.prefix)
        follows = state is not None and state.live and at.epoch == state.epoch
        for key in keys:
            self._storage.drop(key)
            if follows:
                assert state is not None
                state.note(key, at.sequence)
        if state is not None and state.live and at.epoch != state.epoch:
            self.flush(at.prefix, "epoch")  # the owner changed under our stream

    def cleared(self, at: Position) -> None:
        """Our Clear of a prefix committed at `at`."""
        state = self._prefixes.get(at.prefix)
        if state is None:
            return
        if state.live and at.epoch == state.epoch:
            self._storage.drop_group(state)
            state.floor = max(state.floor, at.sequence)
        else:
            self.flush(at.prefix, "epoch")

    # -- the stream's events (the watch streams call these) -----------------

    def started(
        self,
        prefix: str,
        at: Position,
        valid_for_ms: int,
        sent_ms: int,
        asked: float | None = None,
    ) -> None:
        """The owner's stream for `prefix` starts at `at`; `asked` is when we asked for it
        (monotonic, `now()`)."""
        self.flush(prefix, None)
        state = self._prefixes[prefix]
        state.live, state.epoch, state.sequence = True, at.epoch, at.sequence
        state.floor = at.sequence
        state.valid_until = self._clock.first(valid_for_ms, sent_ms, asked)

    def invalidated(
        self, prefix: str, at: Position, keys: Iterable[str], whole_prefix: bool
    ) -> bool:
        """Apply one commit group's invalidation; False when the stream must start again."""
        state = self._in_order(prefix, at, 1)
        if state is None:
            return False
        state.sequence = at.sequence
        if whole_prefix:
            self._storage.drop_group(state)
            state.floor = at.sequence
        else:
            for key in keys:
                self._storage.drop(key)
                state.note(key, at.sequence)
        self.metrics.invalidations.inc()
        return True

    def heartbeat(self, prefix: str, at: Position, valid_for_ms: int, sent_ms: int) -> bool:
        """Nothing changed up to `at`: trust the prefix a while longer; False to start again."""
        state = self._in_order(prefix, at, 0)
        if state is None:
            return False
        state.valid_until = self._clock.until(valid_for_ms, sent_ms)
        return True

    def flush(self, prefix: str, reason: str | None) -> None:
        """Forget the prefix's entries and stream; `reason` is counted (None: not a fault)."""
        state = self._prefixes.get(prefix)
        if state is not None:
            self._storage.drop_group(state)
            if reason is not None and not state.live:
                reason = None  # already flushed: counted once
        self._prefixes[prefix] = PrefixState()
        self._flushes += 1
        if reason is not None:
            self.metrics.flushes.labels(reason).inc()

    def trusted(self, prefix: str) -> bool:
        """Whether entries of `prefix` may be served now (inspection, tests)."""
        state = self._prefixes.get(prefix)
        return state is not None and self._monotonic() < state.valid_until

    def now(self) -> float:
        """The monotonic clock this cache's deadlines are on."""
        return self._monotonic()

    def __len__(self) -> int:
        return len(self._storage)

    def __contains__(self, key: object) -> bool:
        return key in self._storage

    # -- inside ----------------------------------------------------------------

    def _in_order(self, prefix: str, at: Position, step: int) -> PrefixState | None:
        """The live state `at` follows (`step` past where it stands), else None after
        flushing it: a new epoch or a gap means invalidations were missed."""
        state = self._prefixes.get(prefix)
        if state is None or not state.live:
            return None
        if at.epoch != state.epoch:
            self.flush(prefix, "epoch")
            return None
        if at.sequence != state.sequence + step:
            self.flush(prefix, "gap")
            return None
        return state
