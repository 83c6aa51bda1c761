"""Cache-aside with stale-if-error, negative caching, singleflight and a breaker on the cache."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from services.client import CacheError, CacheUnavailable
from services.common.errors import ServiceError
from services.common.json_value import JSON
from services.common.singleflight import Group
from services.market_data.breaker import CircuitBreaker
from services.market_data.deadline import Clock, Deadline
from services.market_data.envelope import REFRESH_AHEAD, REFRESH_REVALIDATE, Envelope, Served
from services.market_data.market_session import Freshness
from services.market_data.metrics import MarketMetrics
from services.market_data.refresh_ahead import BackgroundRefreshes, RefreshPolicy, xfetch_due
from services.market_data.ttl_policy import TtlPolicy
from services.market_data.upstream_errors import SymbolNotFoundError, UpstreamError

log = logging.getLogger(__name__)

# A loader fetches from the upstream within a deadline and says which provider answered.
Loader = Callable[[Deadline], Awaitable[tuple[str, JSON]]]


@dataclass(frozen=True)
class _Load:
    """One key to load: its endpoint (metrics, singleflight), loader and freshness rule."""

    endpoint: str
    key: str
    loader: Loader
    freshness: Callable[[], Freshness]


class Cache(Protocol):
    """The part of services.client.CacheClient used here."""

    async def get(self, key: str) -> JSON | None: ...

    async def set(self, key: str, value: JSON, ttl: int = 3600) -> None: ...

    async def mget(self, keys: Sequence[str]) -> list[JSON | None]: ...

    async def close(self) -> None: ...


class CacheAside:
    """Answers from a fresh cached copy, else from the upstream (once per key at a time).

    - A copy older than its freshness is refreshed; if the upstream then fails,
      the old copy is served marked stale (stale-if-error).
    - A hot copy is refreshed in the background shortly before it expires
      (XFetch), and a copy just past its freshness (MARKET_STALE_WHILE_REVALIDATE)
      is answered at once, marked stale, while one background refresh runs.
    - "Not found" answers are cached for the negative TTL.
    - The cache sits behind its own circuit breaker: when it keeps failing we
      stop asking it for a while, so a dead cache adds no latency.
    - With no cache at all (unset, disabled) every answer comes from upstream.
    """

    def __init__(
        self,
        cache: Cache | None,
        *,
        ttl: TtlPolicy,
        breaker: CircuitBreaker,
        metrics: MarketMetrics,
        refresh: RefreshPolicy | None = None,
        background_budget: float = 15.0,
        clock: Clock = time.time,
    ) -> None:
        self._cache = cache
        self._ttl = ttl
        self._refresh_policy = refresh or RefreshPolicy()
        self._background_budget = background_budget
        self._background = BackgroundRefreshes()
        self._breaker = breaker
        self._metrics = metrics
        self._clock = clock
        self._flights: dict[str, Group[Served]] = {}

    def _group(self, endpoint: str) -> Group[Served]:
        group = self._flights.get(endpoint)
        if group is None:
            counter = self._metrics.singleflight_merged.labels(endpoint)
            group = Group(on_merge=counter.inc)
            self._flights[endpoint] = group
        return group

    async def read(self, key: str, *, count: bool = True) -> Envelope | None:
        """The envelope cached under `key`, or None (miss, cache down or bypassed)."""
        if self._cache is None:
            return None
        if not self._breaker.allow():
            if count:
                self._metrics.cache_requests.labels("bypass").inc()
            return None
        try:
            value = await self._cache.get(key)
        except CacheError as exc:
            self._cache_failed("get", key, exc)
            if count:
                self._metrics.cache_requests.labels("error").inc()
            return None
        self._breaker.record_success()
        envelope = Envelope.from_json(value) if value is not None else None
        if count:
            fresh = envelope is not None and envelope.is_fresh(self._clock())
            self._metrics.cache_requests.labels("hit" if fresh else "miss").inc()
        return envelope

    async def read_many(self, keys: Sequence[str]) -> list[Envelope | None]:
        """Envelopes of many keys in one cache round trip (GetQuotes)."""
        if self._cache is None or not keys:
            return [None] * len(keys)
        if not self._breaker.allow():
            self._metrics.cache_requests.labels("bypass").inc(len(keys))
            return [None] * len(keys)
        try:
            values = await self._cache.mget(keys)
        except CacheError as exc:
            self._cache_failed("mget", keys[0], exc)
            self._metrics.cache_requests.labels("error").inc(len(keys))
            return [None] * len(keys)
        self._breaker.record_success()
        now = self._clock()
        envelopes = [Envelope.from_json(v) if v is not None else None for v in values]
        hits = sum(1 for e in envelopes if e is not None and e.is_fresh(now))
        self._metrics.cache_requests.labels("hit").inc(hits)
        self._metrics.cache_requests.labels("miss").inc(len(keys) - hits)
        return envelopes

    async def write(self, key: str, envelope: Envelope, ttl: int) -> None:
        """Store an envelope; a failure is logged and counted against the cache breaker."""
        if self._cache is None or not self._breaker.allow():
            return
        try:
            await self._cache.set(key, envelope.to_json(), ttl)
        except CacheError as exc:
            self._cache_failed("set", key, exc)
            return
        self._breaker.record_success()

    def _cache_ttl(self, fresh_for: int) -> int:
        # Kept past freshness for stale-if-error, and at least for the SWR window.
        return self._ttl.cache_ttl(fresh_for, self._refresh_policy.stale_while_revalidate)

    def _cache_failed(self, op: str, key: str, exc: CacheError) -> None:
        if isinstance(exc, CacheUnavailable):
            self._breaker.record_failure()
            level = logging.DEBUG
        else:
            self._breaker.record_neutral()
            level = logging.WARNING
        log.log(level, "cache %s failed for prefix %r: %s", op, key.partition(":")[0], exc)

    async def fetch(
        self,
        endpoint: str,
        key: str,
        loader: Loader,
        freshness: Callable[[], Freshness],
        deadline: Deadline,
        *,
        cached: Envelope | None = None,
        looked_up: bool = False,
    ) -> Served:
        """The answer for `key`: from the cache, else loaded (see the class notes).

        `freshness` is asked when the data is loaded (the session then decides).
        `looked_up` says the caller already read the cache (as `cached`), as
        GetQuotes does with one MGet for the whole batch.
        """
        load = _Load(endpoint, key, loader, freshness)
        envelope = cached if looked_up else await self.read(key)
        if envelope is not None:
            now = self._clock()
            left = envelope.time_left(now)
            if envelope.not_found is not None:
                if left > 0:
                    return self._answer(envelope)
            elif left > 0:
                started = xfetch_due(left, envelope.fetch_seconds, self._refresh_policy.beta)
                started = started and self._in_background(load, envelope, REFRESH_AHEAD)
                return _marked(envelope.served(now), REFRESH_AHEAD if started else "")
            elif -left < self._refresh_policy.stale_while_revalidate:
                started = self._in_background(load, envelope, REFRESH_REVALIDATE)
                served = envelope.served(now, stale=True)
                return _marked(served, REFRESH_REVALIDATE if started else "")
        return await self._group(endpoint).do(key, lambda: self._refresh(load, deadline, envelope))

    def must_load(self, envelope: Envelope | None) -> bool:
        """Whether a read that found `envelope` has to wait for the upstream."""
        if envelope is None:
            return True
        left = envelope.time_left(self._clock())
        if left > 0:
            return False
        window = self._refresh_policy.stale_while_revalidate
        return envelope.not_found is not None or -left >= window

    def _in_background(self, load: _Load, seen: Envelope, kind: str) -> bool:
        """Refresh `key` after answering, through the singleflight; once per key at a time."""

        async def refresh() -> Served:
            # A deadline of its own: the request that started it is already answered.
            deadline = Deadline.after(self._background_budget)
            return await self._group(load.endpoint).do(
                load.key, lambda: self._refresh(load, deadline, seen)
            )

        started = self._background.start(load.key, refresh)
        if started:
            self._metrics.background_refreshes.labels(load.endpoint, kind).inc()
        return started

    async def close(self) -> None:
        """Stop background refreshes (at shutdown)."""
        await self._background.close()

    def _answer(self, envelope: Envelope) -> Served:
        if envelope.not_found is not None:
            raise SymbolNotFoundError(envelope.not_found)
        return envelope.served(self._clock())

    async def _refresh(self, load: _Load, deadline: Deadline, seen: Envelope | None) -> Served:
        # Re-check the cache inside the flight. Singleflight merges only calls
        # that overlap: a request that missed just before the previous flight
        # for this key finished and wrote the cache would otherwise start a
        # second flight and call the upstream again for data now cached. A
        # refresh ahead saw a fresh copy, so only a newer one ends it here.
        old = seen
        key = load.key
        current = await self.read(key, count=False)
        if current is not None:
            newer = seen is None or current.fetched_at > seen.fetched_at
            if newer and current.is_fresh(self._clock()):
                return self._answer(current)
            old = current
        started = time.perf_counter()
        try:
            provider, data = await load.loader(deadline)
        except SymbolNotFoundError as exc:
            negative = Envelope(None, self._clock(), self._ttl.negative, "", exc.message)
            await self.write(key, negative, self._ttl.negative)
            raise
        except UpstreamError as exc:
            return self._stale_or_raise(load.endpoint, old, exc)
        # XFetch's delta: what recomputing costs; the upstream call dominates it.
        took = time.perf_counter() - started
        fresh = load.freshness()
        envelope = Envelope(
            data,
            self._clock(),
            fresh.seconds,
            provider,
            session=fresh.session,
            reason=fresh.reason,
            fetch_seconds=took,
        )
        await self.write(key, envelope, self._cache_ttl(fresh.seconds))
        return Served(data, envelope.provenance(envelope.fetched_at, cached=False))

    def _stale_or_raise(self, endpoint: str, old: Envelope | None, exc: UpstreamError) -> Served:
        if exc.stale_ok and old is not None and old.not_found is None:
            self._metrics.stale_served.labels(endpoint).inc()
            served = old.served(self._clock(), stale=True)
            # INFO, not WARNING: under an outage this fires per request; the
            # breaker's transitions and market_stale_served_total carry the alarm.
            log.info(
                "serving a stale %s (%.0fs old) because the upstream failed: %s",
                endpoint,
                served.provenance.age_seconds,
                exc.message,
                extra={"endpoint": endpoint, "code": exc.code.name},
            )
            return served
        if not exc.stale_ok:
            raise exc
        raise ServiceError(
            exc.code, f"{exc.message}; no cached copy to serve instead", exc.details
        ) from None


def _marked(served: Served, refresh: str) -> Served:
    """`served`, its provenance saying what it started in the background."""
    return replace(served, provenance=replace(served.provenance, refresh=refresh))
