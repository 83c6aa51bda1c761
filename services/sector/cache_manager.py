"""The sector namespaces in the cache (the seed's SectorCacheManager).

Keys: `sectors:<SYMBOL>` (one sector's data), `snapshots:latest` (the whole
snapshot) and `metrics:<SYMBOL>:<session>` (a history digest). Reads and
ordinary writes never fail the caller: a cache that is off, down or slow is a
miss, and after a failure the cache is skipped for a while (degraded) instead
of costing a timeout on every call. Admin operations (`strict=True`) do fail,
with a status that says why.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf import json_format, message

from marketcache.v1 import sector_pb2
from services.client import CacheClient, CacheError, CacheUnavailable
from services.common.errors import ServiceError
from services.common.hit_rate import hit_rate
from services.common.json_value import JSON
from services.market_data.market_session import DEFAULT_CLOSED_MAX, Freshness, SessionFreshness
from services.market_data.nyse_calendar import NyseCalendar, SessionState
from services.sector.analytics import HistoryDigest
from services.sector.metrics import NAMESPACES, SectorMetrics

log = logging.getLogger(__name__)

SNAPSHOT_KEY = "snapshots:latest"
# The seed's alert threshold, and the lookups needed before a low rate means anything.
LOW_HIT_RATE = 0.7
MIN_LOOKUPS_FOR_ALERT = 20

M = TypeVar("M")
Msg = TypeVar("Msg", bound=message.Message)


def sector_key(symbol: str) -> str:
    return f"sectors:{symbol}"


def digest_key(symbol: str, session: dt.date) -> str:
    # The session is in the key: yesterday's digest is never today's, whatever its TTL.
    return f"metrics:{symbol}:{session.isoformat()}"


@dataclass(frozen=True)
class Cached(Generic[M]):
    """A value read from the cache, when it was stored (Unix seconds) and how fresh it was made."""

    value: M
    stored_at: float
    freshness: Freshness | None = None


class SectorCacheManager:
    """Namespaced sector entries over a CacheClient (None when caching is off)."""

    def __init__(
        self,
        client: CacheClient | None,
        metrics: SectorMetrics,
        *,
        ttl_data: int,
        ttl_snapshot: int,
        ttl_metrics: int,
        retry_seconds: float,
        disabled_reason: str = "caching is disabled (CACHE_ENABLED=false)",
        freshness: SessionFreshness | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        # Judges the session on the market clock (MARKET_NOW); ages stay on `clock`.
        self._freshness = freshness or SessionFreshness(NyseCalendar(), clock, DEFAULT_CLOSED_MAX)
        self._metrics = metrics
        self.ttl_data = ttl_data
        self.ttl_snapshot = ttl_snapshot
        self.ttl_metrics = ttl_metrics
        self._retry_seconds = retry_seconds
        self._disabled_reason = disabled_reason
        self._clock = clock
        self._monotonic = monotonic
        self._skip_until = 0.0
        metrics.cache_available.set(1 if client is not None else 0)

    @property
    def enabled(self) -> bool:
        """Caching is switched on and configured."""
        return self._client is not None

    @property
    def available(self) -> bool:
        """Enabled, and not backing off after a failure (otherwise: degraded)."""
        return self._client is not None and self._monotonic() >= self._skip_until

    def now(self) -> float:
        return self._clock()

    def data_freshness(self) -> Freshness:
        """sectors:<SYMBOL>: SECTOR_TTL_DATA during regular hours, else until the next open."""
        return self._freshness.follows_session(self.ttl_data, "SECTOR_TTL_DATA")

    def snapshot_freshness(self) -> Freshness:
        """snapshots:latest: SECTOR_TTL_SNAPSHOT during regular hours, else until the next open."""
        return self._freshness.follows_session(self.ttl_snapshot, "SECTOR_TTL_SNAPSHOT")

    def require(self, operation: str) -> None:
        """FAILED_PRECONDITION unless caching is on (for operations that are about the cache)."""
        if self._client is None:
            raise ServiceError(
                grpc.StatusCode.FAILED_PRECONDITION, f"cannot {operation}: {self._disabled_reason}"
            )

    # -- sectors:<SYMBOL> ---------------------------------------------------------------

    async def sectors(self, symbols: Sequence[str]) -> dict[str, Cached[sector_pb2.SectorData]]:
        """Cached sector data of the symbols that have some."""
        keys = [sector_key(s) for s in symbols]
        found: dict[str, Cached[sector_pb2.SectorData]] = {}
        for symbol, key, raw in zip(symbols, keys, await self._mget(keys), strict=True):
            entry = await self._parse(key, raw, "sector", sector_pb2.SectorData)
            self._count("sectors", entry is not None)
            if entry is not None:
                found[symbol] = entry
        return found

    async def put_sectors(
        self, records: Sequence[sector_pb2.SectorData], ttl: int = 0, *, strict: bool = False
    ) -> int:
        """Store sector data for `ttl` seconds (0: as the session allows); returns how many."""
        if ttl:
            market = self._freshness.market().state
            fresh = Freshness(ttl, market, "ttlSeconds of SetBatchSectorData")
        else:
            fresh = self.data_freshness()
        items = [
            (sector_key(r.symbol), self._wrap("sector", r, fresh), fresh.seconds) for r in records
        ]
        done = await self._write("store sector data", lambda c: c.mset(items), strict)
        return len(items) if done else 0

    # -- snapshots:latest ---------------------------------------------------------------

    async def snapshot(self) -> Cached[sector_pb2.GetSectorSnapshotResponse] | None:
        (raw,) = await self._mget([SNAPSHOT_KEY])
        entry = await self._parse(
            SNAPSHOT_KEY, raw, "snapshot", sector_pb2.GetSectorSnapshotResponse
        )
        self._count("snapshots", entry is not None)
        return entry

    async def put_snapshot(
        self, snapshot: sector_pb2.GetSectorSnapshotResponse, *, strict: bool = False
    ) -> bool:
        fresh = self.snapshot_freshness()
        value = self._wrap("snapshot", snapshot, fresh)
        return await self._write(
            "store the snapshot", lambda c: c.set(SNAPSHOT_KEY, value, fresh.seconds), strict
        )

    async def drop_snapshot(self) -> None:
        """Forget the snapshot, so the next one includes newly written sector data."""
        await self._write("drop the snapshot", lambda c: c.delete(SNAPSHOT_KEY), False)

    # -- metrics:<SYMBOL>:<session> -----------------------------------------------------

    async def digests(self, sessions: Mapping[str, dt.date]) -> dict[str, HistoryDigest]:
        """Cached history digests of the symbols, each for its own session."""
        keys = [digest_key(s, d) for s, d in sessions.items()]
        found: dict[str, HistoryDigest] = {}
        for symbol, key, raw in zip(sessions, keys, await self._mget(keys), strict=True):
            digest = None
            if isinstance(raw, dict):
                try:
                    digest = HistoryDigest.from_json(raw)
                except (KeyError, ValueError, TypeError) as exc:
                    await self._discard(key, exc)
            self._count("metrics", digest is not None)
            if digest is not None:
                found[symbol] = digest
        return found

    async def put_digests(self, digests: Sequence[HistoryDigest]) -> None:
        items = [(digest_key(d.symbol, d.session), d.to_json(), self.ttl_metrics) for d in digests]
        if items:
            await self._write("store history digests", lambda c: c.mset(items), False)

    # -- administration -----------------------------------------------------------------

    async def clear_all(self, token: str | None) -> tuple[int, list[str]]:
        """Clear every sector namespace (admin); returns the keys deleted and the namespaces."""
        deleted = 0

        async def clear(client: CacheClient) -> None:
            nonlocal deleted
            for namespace in NAMESPACES:
                deleted += await client.clear(namespace, token=token)

        await self._write("clear the sector caches", clear, True)
        return deleted, list(NAMESPACES)

    async def stats(self) -> sector_pb2.GetCacheStatsResponse:
        """Per-namespace figures from the cache's own per-prefix metrics."""
        reply = sector_pb2.GetCacheStatsResponse(enabled=False, status="degraded")
        figures: dict[str, Mapping[str, Any]] = {}
        if self._client is not None:
            # Always ask, even while backing off: this is how an operator checks.
            try:
                metrics = await self._client.get_metrics()
                self._succeeded()
                prefixes = metrics.get("prefixes") or metrics.get("metrics", {}).get("prefixes")
                figures = {p["prefix"]: p for p in prefixes or ()}
                reply.enabled, reply.status = True, "healthy"
            except CacheError as exc:
                self._failed("read cache metrics", exc)
        for namespace in NAMESPACES:
            entry = figures.get(namespace, {})
            hits, misses = int(entry.get("hits", 0)), int(entry.get("misses", 0))
            reply.namespaces.add(
                namespace=namespace,
                hits=hits,
                misses=misses,
                hit_rate=hit_rate(hits, misses),
                keys=int(entry.get("keys", 0)),
            )
            reply.hits += hits
            reply.misses += misses
        reply.hit_rate = hit_rate(reply.hits, reply.misses)
        if reply.hits + reply.misses >= MIN_LOOKUPS_FOR_ALERT and reply.hit_rate < LOW_HIT_RATE:
            log.warning(
                "sector cache hit rate %.2f is below %.1f (%d hits, %d misses)",
                reply.hit_rate,
                LOW_HIT_RATE,
                reply.hits,
                reply.misses,
            )
        return reply

    # -- plumbing -----------------------------------------------------------------------

    def _wrap(self, field: str, msg: message.Message, fresh: Freshness) -> dict[str, JSON]:
        return {
            field: json_format.MessageToDict(msg),
            "storedAt": self._clock(),
            "freshFor": fresh.seconds,
            "session": fresh.session.value,
            "reason": fresh.reason,
        }

    async def _parse(self, key: str, raw: JSON, field: str, kind: type[Msg]) -> Cached[Msg] | None:
        if raw is None:
            return None
        try:
            msg = json_format.ParseDict(raw[field], kind(), ignore_unknown_fields=True)
            return Cached(msg, float(raw["storedAt"]), _freshness_of(raw))
        except (KeyError, TypeError, ValueError, json_format.ParseError) as exc:
            await self._discard(key, exc)
            return None

    async def _discard(self, key: str, exc: Exception) -> None:
        # A value we cannot read (another version wrote it, or someone else) is a
        # miss; deleting it lets the rebuilt value take its place.
        log.warning("discarding unreadable cache entry %s: %s", key, exc)
        await self._write("discard an unreadable entry", lambda c: c.delete(key), False)

    async def _mget(self, keys: list[str]) -> list[JSON | None]:
        client = self._client
        if client is None or not self.available:
            return [None] * len(keys)
        try:
            values = await client.mget(keys)
        except CacheError as exc:
            self._failed("read", exc)
            return [None] * len(keys)
        self._succeeded()
        return values

    async def _write(
        self, operation: str, call: Callable[[CacheClient], Awaitable[object]], strict: bool
    ) -> bool:
        client = self._client
        if client is None:
            if strict:
                self.require(operation)
            return False
        if not strict and not self.available:
            return False
        try:
            await call(client)
        except CacheError as exc:
            self._failed(operation, exc)
            if strict:
                raise _admin_error(operation, client.address, exc) from None
            return False
        self._succeeded()
        return True

    def _count(self, namespace: str, hit: bool) -> None:
        # With caching off there are no lookups to count; while the cache is down
        # (or skipped after a failure) a lookup is a miss.
        if self._client is not None:
            self._metrics.lookup(namespace, hit)

    def _succeeded(self) -> None:
        if self._skip_until:
            log.info("the cache answers again: caching resumed")
            self._skip_until = 0.0
        self._metrics.cache_available.set(1)

    def _failed(self, operation: str, exc: CacheError) -> None:
        self._metrics.cache_errors.labels(operation).inc()
        if not isinstance(exc, CacheUnavailable):
            # The cache answered, it refused this one request: not an outage.
            log.warning("cache refused to %s: %s", operation, exc)
            return
        if self.available:
            log.warning(
                "cache failed to %s (%s); answering without it for %.0fs",
                operation,
                exc,
                self._retry_seconds,
            )
        self._skip_until = self._monotonic() + self._retry_seconds
        self._metrics.cache_available.set(0)


def _freshness_of(raw: dict[str, JSON]) -> Freshness | None:
    # Entries written before sessions counted carry no freshness; they still serve.
    fresh_for, session = raw.get("freshFor"), raw.get("session")
    if not isinstance(fresh_for, int | float) or session not in tuple(SessionState):
        return None
    return Freshness(int(fresh_for), SessionState(session), str(raw.get("reason") or ""))


def _admin_error(operation: str, address: str, exc: CacheError) -> ServiceError:
    if isinstance(exc, CacheUnavailable):
        return ServiceError(
            grpc.StatusCode.UNAVAILABLE,
            f"cannot {operation}: the cache at {address} did not answer ({exc}); retry later",
        )
    if exc.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return ServiceError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"cannot {operation}: the cache refused this service's credentials ({exc}); "
            "give SectorService the same ADMIN_TOKEN as CacheService",
        )
    return ServiceError(exc.code, f"cannot {operation}: the cache refused: {exc.message}")
