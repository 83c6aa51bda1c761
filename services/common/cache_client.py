"""The Python client of the CacheService (the seed's createCacheInstance and DualCacheDO)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.channels import open_channel
from services.common.config import Env
from services.common.json_value import JSON, from_value, to_value
from services.common.tls import TlsConfig

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 0.25
DEFAULT_TTL = 3600

# Codes that mean "the cache could not answer" rather than "the cache refused the request".
_TRANSPORT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
    }
)

MSetItem = tuple[str, JSON, int] | Mapping[str, Any]


class CacheError(Exception):
    """The cache rejected a request (bad key, TTL, size, auth); `code` is the gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class CacheUnavailable(CacheError):  # noqa: N818 (the name other services import)
    """The cache could not be reached or did not answer in time."""


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
    """The seed's createCacheInstance: None when CACHE_ADDR is unset or CACHE_ENABLED is false."""
    env = env or Env()
    if not env.flag("CACHE_ENABLED", True):
        return None
    address = env.optional("CACHE_ADDR")
    if address is None:
        return None
    env.address("CACHE_ADDR", address)  # fail fast on a malformed address, naming the variable
    if timeout is None:
        timeout = env.number("CACHE_CLIENT_TIMEOUT", DEFAULT_TIMEOUT, minimum=0.001, maximum=60.0)
    return CacheClient(address, timeout=timeout, registry=registry, tls=TlsConfig.from_env(env))


class CacheClient:
    """An asyncio client of one CacheService; one channel, opened on first use."""

    def __init__(
        self,
        address: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        registry: CollectorRegistry | None = None,
        tls: TlsConfig | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._tls = tls
        self._channel: grpc.aio.Channel | None = None
        self._stub: cache_pb2_grpc.CacheServiceAsyncStub | None = None
        # Times get_or_fetch fell back to the fetcher because the cache failed.
        self.fallbacks = 0
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

    def _service(self) -> cache_pb2_grpc.CacheServiceAsyncStub:
        if self._stub is None:
            # Lazily, so the channel binds to the event loop that uses it.
            self._channel = open_channel(self.address, self._tls)
            self._stub = cache_pb2_grpc.CacheServiceStub(self._channel)
        return self._stub

    async def _call(
        self,
        method: str,
        request: Any,
        metadata: Sequence[tuple[str, str]] | None = None,
    ) -> Any:
        rpc = getattr(self._service(), method)
        try:
            return await rpc(request, timeout=self.timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise _error_from(exc) from None

    async def get(self, key: str) -> JSON | None:
        """The value of `key`, or None on a miss (use get_entry to tell a stored null apart)."""
        entry = await self.get_entry(key)
        return None if entry is None else entry.value

    async def get_entry(self, key: str) -> CacheEntry | None:
        """The entry of `key`, or None on a miss."""
        reply: cache_pb2.GetResponse = await self._call("Get", cache_pb2.GetRequest(key=key))
        if not reply.found:
            return None
        return CacheEntry(from_value(reply.value), int(reply.ttl_remaining_seconds))

    async def set(self, key: str, value: JSON, ttl: int = DEFAULT_TTL) -> None:
        """Store `value` (any JSON-serializable object) for `ttl` seconds; TypeError if not JSON."""
        request = cache_pb2.SetRequest(key=key, value=to_value(value), ttl_seconds=int(ttl))
        await self._call("Set", request)

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when a live entry existed."""
        reply: cache_pb2.DeleteResponse = await self._call(
            "Delete", cache_pb2.DeleteRequest(key=key)
        )
        return bool(reply.deleted)

    async def mget(self, keys: Sequence[str]) -> list[JSON | None]:
        """Values of `keys` in order, None for each miss."""
        reply: cache_pb2.MGetResponse = await self._call(
            "MGet", cache_pb2.MGetRequest(keys=list(keys))
        )
        return [from_value(r.value) if r.found else None for r in reply.results]

    async def mset(self, items: Sequence[MSetItem]) -> int:
        """Store many entries at once: (key, value, ttl) tuples or {"key","value","ttl"} dicts."""
        request = cache_pb2.MSetRequest(items=[_mset_item(item) for item in items])
        reply: cache_pb2.MSetResponse = await self._call("MSet", request)
        return int(reply.written)

    async def clear(self, prefix: str, *, token: str | None = None) -> int:
        """Delete every key of `prefix` (admin: needs the ADMIN_TOKEN); returns how many."""
        metadata = [("authorization", f"Bearer {token}")] if token else None
        reply: cache_pb2.ClearResponse = await self._call(
            "Clear", cache_pb2.ClearRequest(prefix=prefix), metadata
        )
        return int(reply.deleted)

    async def health(self) -> dict[str, Any]:
        """The seed's health(): {"status", "enabled", "hitRate", "metrics"}; never raises
        for an unreachable cache (status "unavailable" with the reason)."""
        try:
            reply: cache_pb2.HealthResponse = await self._call("Health", cache_pb2.HealthRequest())
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
        reply: cache_pb2.GetMetricsResponse = await self._call(
            "GetMetrics", cache_pb2.GetMetricsRequest()
        )
        return metrics_dict(reply.metrics)

    async def get_or_fetch(
        self, key: str, fetcher: Callable[[], Awaitable[JSON]], ttl: int = DEFAULT_TTL
    ) -> JSON:
        """Cache-aside: the cached value, else fetcher()'s (then cached).

        A cache failure never fails the caller: it is logged, counted in
        `fallbacks` and cache_client_fallbacks_total{op}, and the fetcher answers.
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

    async def close(self) -> None:
        """Close the channel; the client may be used again (a new channel opens)."""
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close(None)


def _mset_item(item: MSetItem) -> cache_pb2.MSetItem:
    if isinstance(item, Mapping):
        key, value, ttl = item["key"], item.get("value"), item.get("ttl", DEFAULT_TTL)
    else:
        key, value, ttl = item
    return cache_pb2.MSetItem(key=key, value=to_value(value), ttl_seconds=int(ttl or 0))


def _error_from(exc: grpc.aio.AioRpcError) -> CacheError:
    code = exc.code()
    message = exc.details() or code.name
    if code in _TRANSPORT_CODES:
        return CacheUnavailable(code, message)
    return CacheError(code, message)


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
