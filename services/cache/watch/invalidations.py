"""Near-cache invalidations: one change per commit group and prefix, pushed to watchers.

`committed` runs on the event loop when a commit settles, before any writer is
answered, so a change is queued for every watcher before its write is
acknowledged. Queues are bounded and never waited on: a watcher too slow to
keep up is marked overflowed (its stream is reset), and commits go on.
Sweeps and TTL expiry publish nothing: clients honour TTLs themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from services.cache.storage.writes import ClearPrefix, Put, Remove, WriteOp
from services.cache.watch.positions import At, Positions

# Events a watcher may have queued before it counts as too slow.
DEFAULT_QUEUE_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Change:
    """One commit group on one prefix: its position and keys (none when `whole_prefix`)."""

    at: At
    keys: tuple[str, ...]
    whole_prefix: bool
    # Monotonic time the commit settled (for the commit-to-send lag).
    settled_at: float

    @property
    def prefix(self) -> str:
        """The prefix the group touched."""
        return self.at.prefix


@dataclass(frozen=True, slots=True)
class Moved:
    """The prefix's lease was lost or changed epoch here: its watchers must start again."""

    prefix: str
    reason: str


Event = Change | Moved


class Watcher:
    """One subscription's bounded queue of events for its prefixes."""

    def __init__(self, prefixes: Iterable[str], limit: int) -> None:
        self.prefixes = frozenset(prefixes)
        self._limit = limit
        self._queue: deque[Event] = deque()
        self._wake = asyncio.Event()
        # Set once the queue overflowed: the stream must be reset, its events are gone.
        self.overflowed = False

    def offer(self, event: Event) -> None:
        """Queue `event` without ever waiting; on overflow drop everything instead."""
        if self.overflowed:
            return
        if len(self._queue) >= self._limit:
            self.overflowed = True
            self._queue.clear()
        else:
            self._queue.append(event)
        self._wake.set()

    def take(self) -> list[Event]:
        """Everything queued, oldest first."""
        events = list(self._queue)
        self._queue.clear()
        self._wake.clear()
        return events

    async def wait(self, seconds: float) -> None:
        """Until something is queued, or `seconds` passed."""
        if self._queue or self.overflowed:
            return
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the
        # cancellation of a Watch whose client went away as a wake-up lands.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()


class Invalidations:
    """Numbers each settled commit group per prefix and fans the change out to watchers."""

    def __init__(
        self,
        positions: Positions,
        *,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.positions = positions
        self.queue_limit = queue_limit
        self._monotonic = monotonic
        self._watchers: dict[str, set[Watcher]] = {}

    @property
    def watchers(self) -> int:
        """Subscriptions open now."""
        return len({w for ws in self._watchers.values() for w in ws})

    def watch(self, prefixes: Iterable[str]) -> Watcher:
        """A new watcher of `prefixes`; read each one's position right after, with no await
        in between, and nothing committed in between is missed."""
        watcher = Watcher(prefixes, self.queue_limit)
        for prefix in watcher.prefixes:
            self._watchers.setdefault(prefix, set()).add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        """Forget `watcher` (its stream ended)."""
        for prefix in watcher.prefixes:
            watchers = self._watchers.get(prefix)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[prefix]

    def committed(self, ops: Sequence[WriteOp]) -> None:
        """A commit group settled (or failed with an unknown outcome): number it per
        prefix, stamp its ops' `commit_seq`, and queue one change per prefix."""
        groups: dict[tuple[str, int], list[Put | Remove | ClearPrefix]] = {}
        for op in ops:
            if type(op) is Put or type(op) is Remove or type(op) is ClearPrefix:
                groups.setdefault((op.prefix, op.epoch), []).append(op)
        if not groups:
            return  # a Sweep alone
        now = self._monotonic()
        for (prefix, epoch), group in groups.items():
            at = self.positions.advance(prefix, epoch)
            if at is None:
                self.moved(prefix, "a commit of an older lease epoch settled")
                continue
            whole = False
            for op in group:
                op.commit_seq = at.sequence
                whole = whole or type(op) is ClearPrefix
            watchers = self._watchers.get(prefix)
            if watchers:
                keys = () if whole else tuple(dict.fromkeys(_key(op) for op in group))
                change = Change(at, keys, whole, now)
                for watcher in watchers:
                    watcher.offer(change)

    def moved(self, prefix: str, reason: str) -> None:
        """Tell every watcher of `prefix` that its history here ended."""
        for watcher in self._watchers.get(prefix, ()):
            watcher.offer(Moved(prefix, reason))


def _key(op: Put | Remove | ClearPrefix) -> str:
    assert type(op) is not ClearPrefix
    return op.key  # type: ignore[union-attr]
