"""Cache-aside with stale-if-error, negative caching, singleflight and a breaker on the cache."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from services.common.cache_client import CacheError, CacheUnavailable
from services.common.errors import ServiceError
from services.common.json_value import JSON
from services.common.singleflight import Group
from services.market_data.breaker import CircuitBreaker
from services.market_data.deadline import Clock
from services.market_data.envelope import Envelope, Provenance, Served
from services.market_data.metrics import MarketMetrics
from services.market_data.ttl_policy import TtlPolicy
from services.market_data.upstream_errors import SymbolNotFoundError, UpstreamError

log = logging.getLogger(__name__)

# A loader fetches from the upstream and says which provider answered.
Loader = Callable[[], Awaitable[tuple[str, JSON]]]


class Cache(Protocol):
    """The part of services.common.cache_client.CacheClient used here."""

    async def get(self, key: str) -> JSON | None: ...

    async def set(self, key: str, value: JSON, ttl: int = 3600) -> None: ...

    async def mget(self, keys: Sequence[str]) -> list[JSON | None]: ...

    async def close(self) -> None: ...


class CacheAside:
    """Answers from a fresh cached copy, else from the upstream (once per key at a time).

    - A copy older than its freshness is refreshed; if the upstream then fails,
      the old copy is served marked stale (stale-if-error).
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
        clock: Clock = time.time,
    ) -> None:
        self._cache = cache
        self._ttl = ttl
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
        fresh_for: int,
        *,
        cached: Envelope | None = None,
        looked_up: bool = False,
    ) -> Served:
        """The answer for `key`: fresh from the cache, else loaded (see the class notes).

        `looked_up` says the caller already read the cache (as `cached`), as
        GetQuotes does with one MGet for the whole batch.
        """
        envelope = cached if looked_up else await self.read(key)
        if envelope is not None and envelope.is_fresh(self._clock()):
            return self._answer(envelope)
        return await self._group(endpoint).do(
            key, lambda: self._refresh(endpoint, key, loader, fresh_for, envelope)
        )

    def _answer(self, envelope: Envelope) -> Served:
        if envelope.not_found is not None:
            raise SymbolNotFoundError(envelope.not_found)
        return envelope.served(self._clock())

    async def _refresh(
        self, endpoint: str, key: str, loader: Loader, fresh_for: int, old: Envelope | None
    ) -> Served:
        # Re-check the cache inside the flight. Singleflight merges only calls
        # that overlap: a request that missed just before the previous flight
        # for this key finished and wrote the cache would otherwise start a
        # second flight and call the upstream again for data now cached.
        current = await self.read(key, count=False)
        if current is not None:
            if current.is_fresh(self._clock()):
                return self._answer(current)
            old = current
        try:
            provider, data = await loader()
        except SymbolNotFoundError as exc:
            negative = Envelope(None, self._clock(), self._ttl.negative, "", exc.message)
            await self.write(key, negative, self._ttl.negative)
            raise
        except UpstreamError as exc:
            return self._stale_or_raise(endpoint, old, exc)
        now = self._clock()
        await self.write(
            key, Envelope(data, now, fresh_for, provider), self._ttl.cache_ttl(fresh_for)
        )
        return Served(data, Provenance(provider, cached=False, age_seconds=0.0, stale=False))

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
