"""The Python client of the CacheService (the seed's createCacheInstance and DualCacheDO).

CacheClient's methods apply the policy once (JSON in and out, TTLs, cache-aside
fallbacks) and call the key-value stack built at construction (kv.py): batched
or direct, under the near cache when it is on. Every call goes through one
Transport, which owns the route table, redirects and retries.
"""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter

from marketcache.v1 import cache_pb2
from services.client.batching import Batched
from services.client.direct import Direct
from services.client.errors import CacheError, CacheUnavailable, error_from
from services.client.kv import KeyValue, Metadata
from services.client.near.layer import NearLayer
from services.client.near.near_cache import NearCache
from services.client.near.trust import DEFAULT_MAX_STALENESS_MS
from services.client.transport import Transport
from services.common.config import Env
from services.common.json_value import JSON, to_value
from services.common.singleflight import Group
from services.common.tls import TlsConfig

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 0.25
DEFAULT_TTL = 3600

MSetItem = tuple[str, JSON, int] | Mapping[str, Any]


@dataclass(frozen=True)
class CacheEntry:
    """A cache hit: the stored JSON value (possibly None) and its remaining TTL."""

    value: JSON
    ttl_remaining_seconds: int


def create_cache_instance(
    env: Env | None = None,
    *,
    registry: CollectorRegistry | None = None,
    timeout: float | None = None,
) -> CacheClient | None:
    """The seed's createCacheInstance: None when CACHE_ADDR is unset or CACHE_ENABLED is false.

    CACHE_NEAR_CACHE_BYTES > 0 turns the near cache on (CACHE_NEAR_MAX_STALENESS_MS its bound).
    """
    env = env or Env()
    if not env.flag("CACHE_ENABLED", True):
        return None
    address = env.optional("CACHE_ADDR")
    if address is None:
        return None
    env.address("CACHE_ADDR", address)  # fail fast on a malformed address, naming the variable
    if timeout is None:
        timeout = env.number("CACHE_CLIENT_TIMEOUT", DEFAULT_TIMEOUT, minimum=0.001, maximum=60.0)
    return CacheClient(
        address,
        timeout=timeout,
        registry=registry,
        tls=TlsConfig.from_env(env),
        near_cache_bytes=env.integer("CACHE_NEAR_CACHE_BYTES", 0, minimum=0),
        near_max_staleness_ms=env.integer(
            "CACHE_NEAR_MAX_STALENESS_MS", DEFAULT_MAX_STALENESS_MS, minimum=1, maximum=60_000
        ),
    )


class CacheClient:
    """An asyncio client of the CacheService: `address` first, then each prefix's owner
    directly once known; channels opened on first use."""

    def __init__(
        self,
        address: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        registry: CollectorRegistry | None = None,
        tls: TlsConfig | None = None,
        near_cache_bytes: int = 0,
        near_max_staleness_ms: int = DEFAULT_MAX_STALENESS_MS,
        batching: bool = True,
    ) -> None:
        self.address = address
        self.transport = Transport(address, timeout=timeout, tls=tls)
        # Times get_or_fetch fell back to the fetcher because the cache failed.
        self.fallbacks = 0
        # get_or_fetch's misses in flight, by key: concurrent misses share one fetch.
        self._fetches: Group[JSON] = Group()
        self._fallback_counter: Counter | None = None
        if registry is not None:
            self._fallback_counter = Counter(
                "cache_client_fallbacks_total",
                "Cache-aside calls that bypassed the cache because it failed.",
                ["op"],
                registry=registry,
            )
            for op in ("get", "set"):
                self._fallback_counter.labels(op)
        # The layers, composed once (#12 batching; docs/near-cache.md for the near cache).
        kv: KeyValue = Batched(self.transport) if batching else Direct(self.transport)
        # The near cache, for inspection: None unless near_cache_bytes > 0.
        self.near: NearCache | None = None
        if near_cache_bytes > 0:
            layer = NearLayer.over(
                kv, self.transport, near_cache_bytes, near_max_staleness_ms, registry
            )
            kv, self.near = layer, layer.near
        self._kv = kv

    @property
    def timeout(self) -> float:
        """Seconds each call may take, redirects and retries included."""
        return self.transport.timeout

    async def get(self, key: str) -> JSON | None:
        """The value of `key`, or None on a miss (use get_entry to tell a stored null apart)."""
        hit = await self._kv.get(key)
        return None if hit is None else hit.value

    async def get_entry(self, key: str) -> CacheEntry | None:
        """The entry of `key`, or None on a miss."""
        hit = await self._kv.get(key)
        return None if hit is None else CacheEntry(hit.value, hit.ttl_remaining)

    async def set(self, key: str, value: JSON, ttl: int = DEFAULT_TTL) -> None:
        """Store `value` (any JSON-serializable object) for `ttl` seconds; TypeError if not JSON."""
        await self._kv.set(key, to_value(value), int(ttl))

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when a live entry existed."""
        deleted, _ = await self._kv.delete(key)
        return deleted

    async def mget(self, keys: Sequence[str]) -> list[JSON | None]:
        """Values of `keys` in order, None for each miss (one call per owner); with the
        near cache, what it holds is served from it and only the rest is fetched."""
        hits = await self._kv.mget(list(keys))
        return [None if hit is None else hit.value for hit in hits]

    async def mset(self, items: Sequence[MSetItem]) -> int:
        """Store many entries at once: (key, value, ttl) tuples or {"key","value","ttl"} dicts.

        Atomic per prefix: items of prefixes owned by different nodes are written by
        each owner, and a failure may leave the other owners' items written.
        """
        written, _ = await self._kv.mset([_mset_item(item) for item in items])
        return written

    async def clear(self, prefix: str, *, token: str | None = None) -> int:
        """Delete every key of `prefix` (admin: needs the ADMIN_TOKEN); returns how many."""
        deleted, _ = await self._kv.clear(prefix, _admin(token))
        return deleted

    async def health(self) -> dict[str, Any]:
        """The seed's health(): {"status", "enabled", "hitRate", "metrics"}; never raises
        for an unreachable cache (status "unavailable" with the reason)."""
        try:
            reply: cache_pb2.HealthResponse = await self.transport.call(
                "Health", cache_pb2.HealthRequest()
            )
        except CacheUnavailable as exc:
            return {
                "status": "unavailable",
                "enabled": True,
                "hitRate": 0.0,
                "metrics": {},
                "reason": exc.message,
            }
        return {
            "status": reply.status,
            "enabled": reply.enabled,
            "hitRate": reply.hit_rate,
            "metrics": metrics_dict(reply.metrics),
            "reason": reply.reason,
            "nodeId": reply.node_id,
        }

    async def get_metrics(self) -> dict[str, Any]:
        """The seed's getMetrics(): hits, misses, hitRate, keys, memoryBytes, per prefix."""
        reply: cache_pb2.GetMetricsResponse = await self.transport.call(
            "GetMetrics", cache_pb2.GetMetricsRequest()
        )
        return metrics_dict(reply.metrics)

    async def get_or_fetch(
        self, key: str, fetcher: Callable[[], Awaitable[JSON]], ttl: int = DEFAULT_TTL
    ) -> JSON:
        """Cache-aside: the cached value, else fetcher()'s (then cached).

        A cache failure never fails the caller: it is logged, counted in
        `fallbacks` and cache_client_fallbacks_total{op}, and the fetcher answers.
        Concurrent misses for one key call the fetcher once (singleflight).
        Errors of the fetcher itself propagate. A None result is returned but not
        cached (as in the seed); use set() with a short TTL for negative caching.
        """
        try:
            entry = await self.get_entry(key)
        except CacheError as exc:
            self._fell_back("get", key, exc)
            entry = None
        if entry is not None:
            return entry.value
        # Concurrent misses for one key make one fetcher call and one Set; the
        # callers that join share its value (or its error). The first caller's
        # fetcher and TTL serve them all: one key, one meaning.
        return await self._fetches.do(key, lambda: self._fetch_and_store(key, fetcher, ttl))

    async def _fetch_and_store(
        self, key: str, fetcher: Callable[[], Awaitable[JSON]], ttl: int
    ) -> JSON:
        value = await fetcher()
        if value is not None:
            try:
                await self.set(key, value, ttl)
            except (CacheError, TypeError) as exc:
                self._fell_back("set", key, exc)
        return value

    def _fell_back(self, op: str, key: str, exc: Exception) -> None:
        self.fallbacks += 1
        if self._fallback_counter is not None:
            self._fallback_counter.labels(op).inc()
        # The prefix only: keys may carry request data we do not want in logs.
        prefix = key.partition(":")[0]
        level = logging.DEBUG if isinstance(exc, CacheUnavailable) else logging.WARNING
        log.log(level, "cache %s failed for prefix %r; using the fetcher: %s", op, prefix, exc)

    # -- operator calls (the CLI's): listing, export, import, owners -------------

    async def scan_page(
        self, prefix: str, cursor: str = "", *, match: str = "", limit: int = 0
    ) -> tuple[list[str], str]:
        """One page of `prefix`'s keys and the cursor to go on with ("" when done)."""
        request = cache_pb2.ScanRequest(prefix=prefix, cursor=cursor, match=match, limit=limit)
        reply: cache_pb2.ScanResponse = await self.transport.call("Scan", request, route=prefix)
        return list(reply.keys), reply.next_cursor

    async def scan(self, prefix: str, *, match: str = "", limit: int = 0) -> AsyncIterator[str]:
        """Every key of `prefix` (matching the glob `match`), page after page."""
        cursor = ""
        while True:
            keys, cursor = await self.scan_page(prefix, cursor, match=match, limit=limit)
            for key in keys:
                yield key
            if not cursor:
                return

    async def export(
        self, prefix: str = "", *, token: str | None = None
    ) -> AsyncIterator[cache_pb2.ExportEntry]:
        """Every live entry of `prefix` (or of all prefixes), streamed (admin)."""
        stub = self.transport.stub(self.transport.route(prefix) if prefix else self.address)
        call = stub.Export(cache_pb2.ExportRequest(prefix=prefix), metadata=_admin(token))
        try:
            async for entry in call:
                yield entry
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc) from None

    async def import_entries(
        self, chunks: AsyncIterable[Sequence[cache_pb2.ExportEntry]], *, token: str | None = None
    ) -> int:
        """Write entries chunk by chunk, each durable before the next (admin); how many."""

        async def requests() -> AsyncIterator[cache_pb2.ImportRequest]:
            async for entries in chunks:
                yield cache_pb2.ImportRequest(entries=entries)

        stub = self.transport.stub(self.address)
        try:
            reply = await stub.Import(requests(), metadata=_admin(token))
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc) from None
        return int(reply.imported)

    async def owners(self) -> cache_pb2.ListOwnersResponse:
        """The live members and the lease of each prefix, as the called node knows them."""
        reply: cache_pb2.ListOwnersResponse = await self.transport.call(
            "ListOwners", cache_pb2.ListOwnersRequest()
        )
        return reply

    async def close(self) -> None:
        """Close the channels (and the near cache's streams); the client may be used again."""
        await self._kv.close()
        await self.transport.close()


def _mset_item(item: MSetItem) -> cache_pb2.MSetItem:
    if isinstance(item, Mapping):
        key, value, ttl = item["key"], item.get("value"), item.get("ttl", DEFAULT_TTL)
    else:
        key, value, ttl = item
    return cache_pb2.MSetItem(key=key, value=to_value(value), ttl_seconds=int(ttl or 0))


def _admin(token: str | None) -> Metadata:
    """The metadata of an admin call."""
    return [("authorization", f"Bearer {token}")] if token else None


def metrics_dict(metrics: cache_pb2.CacheMetrics) -> dict[str, Any]:
    """CacheMetrics as plain JSON-style fields (numbers as numbers, lowerCamelCase)."""
    return {
        "hits": metrics.hits,
        "misses": metrics.misses,
        "hitRate": metrics.hit_rate,
        "keys": metrics.keys,
        "memoryBytes": metrics.memory_bytes,
        "maxMemoryBytes": metrics.max_memory_bytes,
        "evictions": metrics.evictions,
        "expired": metrics.expired,
        "sets": metrics.sets,
        "deletes": metrics.deletes,
        "commits": metrics.commits,
        "prefixes": [
            {
                "prefix": p.prefix,
                "hits": p.hits,
                "misses": p.misses,
                "hitRate": p.hit_rate,
                "keys": p.keys,
            }
            for p in metrics.prefixes
        ],
    }
