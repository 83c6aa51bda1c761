"""The client's near cache: hot entries in this process's memory, served only while
the owner's Watch stream vouches for their prefix (docs/near-cache.md).

A hit is served while (1) the entry's TTL has not passed and (2) its prefix is
trusted: the last heartbeat (or start) of the prefix's stream, stamped by the
owner, is younger than min(the owner's lease validity, CACHE_NEAR_MAX_STALENESS_MS).
Every invalidation sent before that stamp has been applied, so a value replaced
by a write acknowledged more than the bound before the read is never served.
Otherwise the caller goes to the server, whose reads are per-key linearizable.
"""

from __future__ import annotations

import pickle
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from marketcache.v1 import cache_pb2
from services.common.json_value import JSON

DEFAULT_MAX_STALENESS_MS = 1000
# Bytes an entry costs besides its key and value (the slot, the entry object, floats).
ENTRY_OVERHEAD = 160
# Keys whose last invalidation a prefix remembers; older ones raise its floor instead.
_RECENT_KEYS = 4096
FLUSH_REASONS = ("gap", "epoch", "reset", "stream", "silent")
# Values returned as they are: immutable, so no caller can change what the next reads.
_IMMUTABLE = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Ticket:
    """Taken when a read starts: what an install checks the read's reply against."""

    flushes: int
    started: float


class _Prefix:
    """What the near cache knows of one prefix's stream."""

    __slots__ = ("epoch", "floor", "keys", "live", "recent", "sequence", "valid_until")

    def __init__(self) -> None:
        # Started and not reset: installs are accepted (at this epoch).
        self.live = False
        self.epoch = 0
        # The last invalidation applied (or where the stream started).
        self.sequence = 0
        # Monotonic time until which held entries may be served.
        self.valid_until = 0.0
        # A read whose position is older than this missed a whole-prefix change.
        self.floor = 0
        # key -> sequence of the last invalidation of it applied.
        self.recent: OrderedDict[str, int] = OrderedDict()
        self.keys: set[str] = set()


class _Entry:
    __slots__ = ("blob", "expires", "size", "state", "value")

    def __init__(self, value: JSON, blob: bytes | None, expires: float, size: int, state: _Prefix):
        self.value = value
        # A container's pickle (each hit unpickles a private copy), else None.
        self.blob = blob
        self.expires = expires
        self.size = size
        self.state = state


class NearMetrics:
    """The near cache's counters (on the client's registry, or on none)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.hits = Counter(
            "cache_near_hits_total", "Reads served from the near cache.", registry=registry
        )
        self.misses = Counter(
            "cache_near_misses_total",
            "Reads the near cache could not serve (absent, expired or not vouched for).",
            registry=registry,
        )
        self.invalidations = Counter(
            "cache_near_invalidations_total",
            "Invalidations applied from the owners' Watch streams.",
            registry=registry,
        )
        self.flushes = Counter(
            "cache_near_flushes_total",
            "Prefixes flushed from the near cache, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in FLUSH_REASONS:
            self.flushes.labels(reason)
        self.bytes = Gauge(
            "cache_near_bytes",
            "Bytes the near cache holds (keys, values, overhead).",
            registry=registry,
        )


class NearCache:
    """A byte-bounded LRU of entries, each trusted through its prefix's stream."""

    def __init__(
        self,
        max_bytes: int,
        max_staleness_ms: int = DEFAULT_MAX_STALENESS_MS,
        *,
        registry: CollectorRegistry | None = None,
        want: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_staleness_ms = max_staleness_ms
        # Asked to open a stream for a prefix the cache would like to hold.
        self.want: Callable[[str], None] = want or (lambda prefix: None)
        self._monotonic = monotonic
        self._wall = wall
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._prefixes: dict[str, _Prefix] = {}
        self.bytes = 0
        self._flushes = 0
        self.metrics = NearMetrics(registry)
        self.metrics.bytes.set_function(lambda: self.bytes)

    # -- reads ---------------------------------------------------------------

    def lookup(self, key: str) -> tuple[JSON, int] | None:
        """(value, whole seconds left) of a servable entry, else None (go to the server)."""
        entry = self._entries.get(key)
        if entry is not None:
            now = self._monotonic()
            if now < entry.state.valid_until and now < entry.expires:
                self._entries.move_to_end(key)
                self.metrics.hits.inc()
                value = entry.value if entry.blob is None else pickle.loads(entry.blob)
                return value, max(1, int(entry.expires - now))
            if now >= entry.expires:
                self._drop(key)
        self.metrics.misses.inc()
        return None

    def ticket(self) -> Ticket:
        """Take before sending a read whose reply may be installed."""
        return Ticket(self._flushes, self._monotonic())

    def install(
        self, key: str, value: JSON, ttl_remaining: int, at: cache_pb2.Position, ticket: Ticket
    ) -> bool:
        """Hold what a read started at `ticket` found, unless something newer was applied
        meanwhile: the read/invalidate race is settled here, by position."""
        state = self._prefixes.get(at.prefix) if at.prefix else None
        if state is None:
            if at.prefix:
                self._prefixes[at.prefix] = _Prefix()
                self.want(at.prefix)
            return False
        if (
            ticket.flushes != self._flushes
            or not state.live
            or at.epoch != state.epoch
            or at.sequence < state.floor
            or at.sequence < state.recent.get(key, 0)
        ):
            return False
        # The server rounds the TTL up: a second less, from when the read began.
        expires = ticket.started + ttl_remaining - 1
        blob = None if isinstance(value, _IMMUTABLE) else pickle.dumps(value, protocol=5)
        size = ENTRY_OVERHEAD + len(key) + (len(blob) if blob is not None else _scalar(value))
        if expires <= self._monotonic() or size > self.max_bytes:
            return False
        self._drop(key)
        self._entries[key] = _Entry(value if blob is None else None, blob, expires, size, state)
        state.keys.add(key)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
        return True

    # -- this client's own writes (read-your-writes) --------------------------

    def forget(self, key: str) -> None:
        """Drop `key` before writing it: the write's outcome may be unknown."""
        self._drop(key)

    def written(self, keys: Iterable[str], at: cache_pb2.Position) -> None:
        """Our write of `keys` committed at `at`: no read older than it may be installed."""
        state = self._prefixes.get(at.prefix)
        for key in keys:
            self._drop(key)
            if state is not None and state.live and at.epoch == state.epoch:
                self._note(state, key, at.sequence)
        if state is not None and state.live and at.epoch != state.epoch:
            self.flush(at.prefix, "epoch")  # the owner changed under our stream

    def cleared(self, at: cache_pb2.Position) -> None:
        """Our Clear of a prefix committed at `at`."""
        state = self._prefixes.get(at.prefix)
        if state is None:
            return
        if state.live and at.epoch == state.epoch:
            self._drop_prefix(state)
            state.floor = max(state.floor, at.sequence)
        else:
            self.flush(at.prefix, "epoch")

    # -- the stream's events (the watch streams call these) -----------------

    def started(self, prefix: str, at: cache_pb2.Position, valid_for_ms: int, sent_ms: int) -> None:
        """The owner's stream for `prefix` starts at `at`."""
        self.flush(prefix, None)
        state = self._prefixes[prefix]
        state.live, state.epoch, state.sequence = True, at.epoch, at.sequence
        state.floor = at.sequence
        state.valid_until = self._trust_until(valid_for_ms, sent_ms)

    def invalidated(
        self, prefix: str, at: cache_pb2.Position, keys: Iterable[str], whole_prefix: bool
    ) -> bool:
        """Apply one commit group's invalidation; False when the stream must start again."""
        state = self._in_order(prefix, at, 1)
        if state is None:
            return False
        state.sequence = at.sequence
        if whole_prefix:
            self._drop_prefix(state)
            state.floor = at.sequence
        else:
            for key in keys:
                self._drop(key)
                self._note(state, key, at.sequence)
        self.metrics.invalidations.inc()
        return True

    def heartbeat(
        self, prefix: str, at: cache_pb2.Position, valid_for_ms: int, sent_ms: int
    ) -> bool:
        """Nothing changed up to `at`: trust the prefix a while longer; False to start again."""
        state = self._in_order(prefix, at, 0)
        if state is None:
            return False
        state.valid_until = self._trust_until(valid_for_ms, sent_ms)
        return True

    def flush(self, prefix: str, reason: str | None) -> None:
        """Forget the prefix's entries and stream; `reason` is counted (None: not a fault)."""
        state = self._prefixes.get(prefix)
        if state is not None:
            self._drop_prefix(state)
            if reason is not None and not state.live:
                reason = None  # already flushed: counted once
        self._prefixes[prefix] = _Prefix()
        self._flushes += 1
        if reason is not None:
            self.metrics.flushes.labels(reason).inc()

    def trusted(self, prefix: str) -> bool:
        """Whether entries of `prefix` may be served now (inspection, tests)."""
        state = self._prefixes.get(prefix)
        return state is not None and self._monotonic() < state.valid_until

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    # -- inside ----------------------------------------------------------------

    def _in_order(self, prefix: str, at: cache_pb2.Position, step: int) -> _Prefix | None:
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

    def _trust_until(self, valid_for_ms: int, sent_ms: int) -> float:
        """Monotonic deadline: min(owner's validity, our bound) from the owner's stamp,
        never from receipt, so a late delivery cannot stretch it."""
        span = min(valid_for_ms, self.max_staleness_ms) / 1000
        if sent_ms > 0:
            span -= max(0.0, self._wall() - sent_ms / 1000)
        return self._monotonic() + span

    def _note(self, state: _Prefix, key: str, sequence: int) -> None:
        state.recent[key] = max(sequence, state.recent.get(key, 0))
        state.recent.move_to_end(key)
        if len(state.recent) > _RECENT_KEYS:
            _, oldest = state.recent.popitem(last=False)
            state.floor = max(state.floor, oldest)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
            entry.state.keys.discard(key)

    def _drop_prefix(self, state: _Prefix) -> None:
        for key in list(state.keys):
            self._drop(key)


def _scalar(value: JSON) -> int:
    return len(value) if isinstance(value, str) else 8
