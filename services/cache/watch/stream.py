"""The Watch stream: where each watched prefix stands, its invalidations in commit
order, heartbeats bounded by this node's lease, and a reset when it cannot go on.

A heartbeat is stamped in the same step that takes the queued changes, with no
await between: every write acknowledged before the stamp had its change queued
before it (invalidations.py), so it is sent ahead of the heartbeat. A client
that trusts its near cache until stamp + min(valid_for, its own bound) therefore
never trusts a value a write acknowledged more than that bound ago replaced.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from marketcache.v1 import cache_pb2
from services.cache.errors import CacheError
from services.cache.ownership.owners import NotOwner, OwnerInfo
from services.cache.watch.invalidations import Change, Invalidations, Watcher
from services.cache.watch.positions import At

# How often a subscriber hears that nothing changed (seconds).
HEARTBEAT_SECONDS = 0.15
# The longest trust one heartbeat grants, whatever the lease has left (ms).
MAX_VALID_MS = 5_000
RESET_REASONS = ("not_owner", "lease", "slow", "unavailable")


class WatchedOwnership(Protocol):
    """What the Watch stream asks of this node's ownership."""

    async def admit(self, prefix: str) -> int:
        """The epoch under which this node serves `prefix` (NotOwner if it does not)."""
        ...

    def current_epoch(self, prefix: str) -> int | None:
        """The epoch of our lease on `prefix`, None when we hold none."""
        ...

    def valid_for(self, prefix: str) -> float:
        """Seconds our lease on `prefix` stays locally valid."""
        ...

    def route(self, prefix: str) -> OwnerInfo | None:
        """None when `prefix` is served here, else its owner."""
        ...


class WatchMetrics:
    """Owner-side near-cache metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.subscribers = Gauge(
            "cache_watch_subscribers",
            "Open Watch streams (near-cache subscribers) on this node.",
            registry=registry,
        )
        self.sent = Counter(
            "cache_watch_invalidations_sent_total",
            "Invalidations sent to near-cache subscribers.",
            registry=registry,
        )
        self.lag = Histogram(
            "cache_watch_invalidation_lag_seconds",
            "From a commit settling to its invalidation being sent to one subscriber.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        self.resets = Counter(
            "cache_watch_resets_total",
            "Watch streams reset for a prefix, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in RESET_REASONS:
            self.resets.labels(reason)


class Watches:
    """Serves Watch streams from the store's invalidations."""

    def __init__(
        self,
        changes: Invalidations,
        ownership: WatchedOwnership,
        metrics: WatchMetrics,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        # With shards (CACHE_DB_URLS) every shard's store feeds these invalidations.
        self._changes = changes
        self._ownership = ownership
        self._metrics = metrics
        self._heartbeat = heartbeat_seconds
        self._monotonic = monotonic
        self._wall = wall

    async def stream(self, prefixes: Sequence[str]) -> AsyncIterator[cache_pb2.WatchEvent]:
        """The events of one Watch call on (validated) `prefixes`."""
        first: list[cache_pb2.WatchEvent] = []
        live: dict[str, int] = {}
        for prefix in dict.fromkeys(prefixes):
            try:
                owner = self._ownership.route(prefix)
                if owner is not None:
                    raise NotOwner(prefix, owner, "this node does not own it")
                live[prefix] = await self._ownership.admit(prefix)
            except NotOwner as exc:
                first.append(self._reset(prefix, "not_owner", exc.message, exc.owner))
            except CacheError as exc:
                first.append(self._reset(prefix, "unavailable", exc.message, None))
        # No await from watching to reading the positions: nothing committed between
        # is missed, nothing before is sent.
        watcher = self._changes.watch(live)
        for prefix, epoch in list(live.items()):
            at = self._changes.positions.current(prefix)
            if at.epoch != epoch or self._ownership.valid_for(prefix) <= 0:
                del live[prefix]
                first.append(self._reset(prefix, "lease", "the lease moved", None))
            else:
                started = cache_pb2.WatchStarted(
                    valid_for_ms=self._valid_ms(prefix), sent_at_unix_ms=self._stamp()
                )
                first.append(
                    cache_pb2.WatchEvent(prefix=prefix, position=position_of(at), started=started)
                )
        self._metrics.subscribers.inc()
        try:
            for event in first:
                yield event
            async for event in self._follow(watcher, live):
                yield event
        finally:
            self._changes.unwatch(watcher)
            self._metrics.subscribers.dec()

    async def _follow(
        self, watcher: Watcher, live: dict[str, int]
    ) -> AsyncIterator[cache_pb2.WatchEvent]:
        next_beat = self._monotonic() + self._heartbeat
        while live:
            await watcher.wait(max(0.0, next_beat - self._monotonic()))
            if watcher.overflowed:
                for prefix in live:
                    yield self._reset(
                        prefix,
                        "slow",
                        f"this subscriber fell more than {self._changes.queue_limit} events "
                        "behind; resubscribe",
                        None,
                    )
                return
            events = watcher.take()
            beats: list[cache_pb2.WatchEvent] = []
            if self._monotonic() >= next_beat:
                # Stamped with the take above, no await between (see the module doc).
                beats = [self._beat(prefix, epoch) for prefix, epoch in live.items()]
                next_beat = self._monotonic() + self._heartbeat
            for event in events:
                if event.prefix not in live:
                    continue
                if type(event) is Change and event.at.epoch == live[event.at.prefix]:
                    yield cache_pb2.WatchEvent(
                        prefix=event.at.prefix,
                        position=position_of(event.at),
                        invalidation=cache_pb2.Invalidation(
                            keys=event.keys, whole_prefix=event.whole_prefix
                        ),
                    )
                    self._metrics.sent.inc()
                    self._metrics.lag.observe(self._monotonic() - event.settled_at)
                else:
                    prefix = event.prefix
                    del live[prefix]
                    why = getattr(event, "reason", "a commit of another lease epoch")
                    yield self._reset(prefix, "lease", why, self._ownership.route(prefix))
            for beat in beats:
                if beat.prefix not in live:
                    continue
                if beat.HasField("reset"):
                    del live[beat.prefix]
                yield beat

    def _beat(self, prefix: str, epoch: int) -> cache_pb2.WatchEvent:
        at = self._changes.positions.current(prefix)
        if at.epoch != epoch or self._ownership.current_epoch(prefix) != epoch:
            return self._reset(prefix, "lease", "the lease was lost", self._ownership.route(prefix))
        if self._ownership.valid_for(prefix) <= 0:
            return self._reset(prefix, "lease", "the lease lapsed (renewals failing)", None)
        beat = cache_pb2.WatchHeartbeat(
            valid_for_ms=self._valid_ms(prefix), sent_at_unix_ms=self._stamp()
        )
        return cache_pb2.WatchEvent(prefix=prefix, position=position_of(at), heartbeat=beat)

    def _valid_ms(self, prefix: str) -> int:
        return min(MAX_VALID_MS, int(self._ownership.valid_for(prefix) * 1000))

    def _stamp(self) -> int:
        return int(self._wall() * 1000)

    def _reset(
        self, prefix: str, reason: str, why: str, owner: OwnerInfo | None
    ) -> cache_pb2.WatchEvent:
        self._metrics.resets.labels(reason).inc()
        reset = cache_pb2.WatchReset(reason=f"{reason}: {why}")
        if owner is not None and owner.address:
            reset.redirect.CopyFrom(
                cache_pb2.OwnerRedirect(
                    prefix=prefix, node_id=owner.node_id, address=owner.address, epoch=owner.epoch
                )
            )
        return cache_pb2.WatchEvent(prefix=prefix, reset=reset)


def position_of(at: At) -> cache_pb2.Position:
    """A store position as the wire's Position."""
    return cache_pb2.Position(prefix=at.prefix, epoch=at.epoch, sequence=at.sequence)
