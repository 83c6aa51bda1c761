"""The Python client of the CacheService (the seed's createCacheInstance and DualCacheDO).

It keeps a route table, prefix -> owner address, and calls a prefix's owner
directly. The table is learned from replies that another node forwarded (their
OWNER_HEADER trailing metadata) and from OwnerRedirect details of errors; an
entry is dropped when its owner fails. Unknown prefixes go to the configured
address, which forwards to the owner: one hop more, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import CollectorRegistry, Counter

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.client.batching import Batcher
from services.client.near.near_cache import DEFAULT_MAX_STALENESS_MS, NearCache, Ticket
from services.client.near.watch_streams import WatchStreams
from services.common.channel_pool import ChannelPool
from services.common.config import Env
from services.common.errors import status_details
from services.common.json_value import JSON, from_value, to_value
from services.common.singleflight import Group
from services.common.tls import TlsConfig
from services.common.wire import OWNER_HEADER

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 0.25
DEFAULT_TTL = 3600
# Attempts per call: the first, then after a redirect or a dead owner.
_ATTEMPTS = 3

if TYPE_CHECKING:
    Stub = cache_pb2_grpc.CacheServiceAsyncStub

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
        self.timeout = timeout
        self._pool: ChannelPool[Stub] = ChannelPool(cache_pb2_grpc.CacheServiceStub, tls)
        # prefix -> address of its owner, as last learned.
        self.routes: dict[str, str] = {}
        # Times get_or_fetch fell back to the fetcher because the cache failed.
        self.fallbacks = 0
        # get_or_fetch's misses in flight, by key: concurrent misses share one fetch.
        self._fetches: Group[JSON] = Group()
        # #12: concurrent get/set/delete share MGet/WriteBatch calls (None: one call each).
        self._batcher = Batcher(self, _failure) if batching else None
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
        # The near cache (docs/near-cache.md): None unless near_cache_bytes > 0.
        self.near: NearCache | None = None
        self._watches: WatchStreams | None = None
        if near_cache_bytes > 0:
            self.near = NearCache(near_cache_bytes, near_max_staleness_ms, registry=registry)
            self._watches = WatchStreams(self.near, self._pool.stub, self.route, address)
            self.near.want = self._watches.want

    def route(self, key_or_prefix: str) -> str:
        """The address to call for a key (or prefix): its owner if known, else `address`."""
        if self.routes:
            # The server's prefix depth is its own business: try each leading part.
            at = key_or_prefix.find(":")
            while at > 0:
                owner = self.routes.get(key_or_prefix[:at])
                if owner is not None:
                    return owner
                at = key_or_prefix.find(":", at + 1)
            return self.routes.get(key_or_prefix, self.address)
        return self.address

    async def _call(
        self,
        method: str,
        request: Any,
        metadata: Sequence[tuple[str, str]] | None = None,
        *,
        route: str | None = None,
        write: bool = False,
    ) -> Any:
        """One call within `timeout`, at the owner of `route` (a key or prefix), following
        an owner redirect and, when safe, retrying at `address` after a dead owner."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        address = self.address if route is None else self.route(route)
        for attempt in range(_ATTEMPTS):
            call = getattr(self._pool.stub(address), method)(
                request, timeout=max(0.001, deadline - loop.time()), metadata=metadata
            )
            try:
                reply = await call
            except grpc.aio.AioRpcError as exc:
                retry = self._retry_at(exc, address, write)
                if retry is None or attempt == _ATTEMPTS - 1 or loop.time() >= deadline:
                    raise _error_from(exc) from None
                address = retry
                continue
            self._learn(await call.trailing_metadata())
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _learn(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
        for key, value in metadata or ():
            if key == OWNER_HEADER and isinstance(value, str):
                prefix, _, owner = value.partition("=")
                if prefix and owner:
                    self.routes[prefix] = owner

    def _retry_at(self, exc: grpc.aio.AioRpcError, address: str, write: bool) -> str | None:
        """Where to try again after `exc` from `address`, or None: do not."""
        redirect = _redirect_of(exc)
        if redirect is not None:
            # The node did nothing (it does not own the prefix, or its lease ended
            # before the commit): any call is safe to send again, to the owner named.
            if redirect.address:
                self.routes[redirect.prefix] = redirect.address
            else:
                self.routes.pop(redirect.prefix, None)
            return redirect.address if redirect.address not in ("", address) else None
        if address == self.address or exc.code() is not grpc.StatusCode.UNAVAILABLE:
            return None
        # An owner we called directly is gone: forget it, and go through `address`.
        # A write is sent again only when it never left (no connection): one that may
        # have reached the dead owner has an unknown outcome, for the caller to judge.
        self.routes = {p: a for p, a in self.routes.items() if a != address}
        if write and not never_sent(exc):
            return None
        return self.address

    def _split(self, keys: Sequence[str]) -> dict[str, list[int]]:
        """Item indexes by the address serving their key."""
        groups: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            groups.setdefault(self.route(key), []).append(index)
        return groups

    async def _fan_out(
        self,
        keys: Sequence[str],
        method: str,
        request_for: Callable[[list[int]], Any],
        write: bool,
    ) -> list[tuple[list[int], Any]]:
        """A batch in one call per owner, run together; (indexes, reply) per part.

        A part the server rejects (a bad key, say) sends the whole batch once more
        in one call, so the error names the item by its index in the caller's batch.
        """
        groups = self._split(keys)
        if len(groups) <= 1:
            indexes = list(range(len(keys)))
            reply = await self._call(
                method, request_for(indexes), route=keys[0] if keys else None, write=write
            )
            return [(indexes, reply)]

        async def part(indexes: list[int]) -> tuple[list[int], Any]:
            reply = await self._call(
                method, request_for(indexes), route=keys[indexes[0]], write=write
            )
            return indexes, reply

        try:
            return list(await asyncio.gather(*(part(ix) for ix in groups.values())))
        except CacheUnavailable:
            raise
        except CacheError:
            indexes = list(range(len(keys)))
            return [(indexes, await self._call(method, request_for(indexes), write=write))]

    async def get(self, key: str) -> JSON | None:
        """The value of `key`, or None on a miss (use get_entry to tell a stored null apart)."""
        entry = await self.get_entry(key)
        return None if entry is None else entry.value

    async def get_entry(self, key: str) -> CacheEntry | None:
        """The entry of `key`, or None on a miss."""
        near = self.near
        ticket = None
        if near is not None:
            held = near.lookup(key)
            if held is not None:
                return CacheEntry(*held)
            ticket = near.ticket()
        reply: cache_pb2.GetResponse | cache_pb2.MGetResult
        if self._batcher is not None:
            reply = await self._batcher.get(key)
        else:
            reply = await self._call("Get", cache_pb2.GetRequest(key=key), route=key)
        if not reply.found:
            return None
        value = from_value(reply.value)
        if ticket is not None:
            _install(near, reply, value, ticket)
        return CacheEntry(value, int(reply.ttl_remaining_seconds))

    async def set(self, key: str, value: JSON, ttl: int = DEFAULT_TTL) -> None:
        """Store `value` (any JSON-serializable object) for `ttl` seconds; TypeError if not JSON."""
        if self.near is not None:
            self.near.forget(key)
        if self._batcher is not None:
            set_op = cache_pb2.SetOp(value=to_value(value), ttl_seconds=int(ttl))
            result = await self._batcher.write(cache_pb2.WriteOp(key=key, set=set_op))
            if self.near is not None:
                self.near.written((key,), result.position)
            return
        request = cache_pb2.SetRequest(key=key, value=to_value(value), ttl_seconds=int(ttl))
        reply: cache_pb2.SetResponse = await self._call("Set", request, route=key, write=True)
        if self.near is not None:
            self.near.written((key,), reply.position)

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when a live entry existed."""
        if self.near is not None:
            self.near.forget(key)
        if self._batcher is not None:
            op = cache_pb2.WriteOp(key=key, delete=cache_pb2.DeleteOp())
            result = await self._batcher.write(op)
            if self.near is not None:
                self.near.written((key,), result.position)
            return bool(result.deleted)
        reply: cache_pb2.DeleteResponse = await self._call(
            "Delete", cache_pb2.DeleteRequest(key=key), route=key, write=True
        )
        if self.near is not None:
            self.near.written((key,), reply.position)
        return bool(reply.deleted)

    async def mget(self, keys: Sequence[str]) -> list[JSON | None]:
        """Values of `keys` in order, None for each miss (one call per owner); with the
        near cache, what it holds is served from it and only the rest is fetched."""
        keys = list(keys)
        near = self.near
        if near is None or not keys:
            return await self._mget(keys, None)
        values: list[JSON | None] = [None] * len(keys)
        rest: list[int] = []
        for i, key in enumerate(keys):
            held = near.lookup(key)
            if held is None:
                rest.append(i)
            else:
                values[i] = held[0]
        if rest:
            fetched = await self._mget([keys[i] for i in rest], near.ticket())
            for i, value in zip(rest, fetched, strict=True):
                values[i] = value
        return values

    async def _mget(self, keys: list[str], ticket: Ticket | None) -> list[JSON | None]:
        parts = await self._fan_out(
            keys, "MGet", lambda ix: cache_pb2.MGetRequest(keys=[keys[i] for i in ix]), False
        )
        values: dict[int, JSON | None] = {}
        for indexes, reply in parts:
            for i, r in zip(indexes, reply.results, strict=True):
                values[i] = value = from_value(r.value) if r.found else None
                if ticket is not None and r.found:
                    _install(self.near, r, value, ticket)
        return [values[i] for i in range(len(keys))]

    async def mset(self, items: Sequence[MSetItem]) -> int:
        """Store many entries at once: (key, value, ttl) tuples or {"key","value","ttl"} dicts.

        Atomic per prefix: items of prefixes owned by different nodes are written by
        each owner, and a failure may leave the other owners' items written.
        """
        converted = [_mset_item(item) for item in items]
        if self.near is not None:
            for item in converted:
                self.near.forget(item.key)
        parts = await self._fan_out(
            [item.key for item in converted],
            "MSet",
            lambda ix: cache_pb2.MSetRequest(items=[converted[i] for i in ix]),
            True,
        )
        if self.near is not None:
            for _, reply in parts:
                for at in reply.positions:
                    mine = at.prefix + ":"
                    self.near.written((i.key for i in converted if i.key.startswith(mine)), at)
        return sum(int(reply.written) for _, reply in parts)

    async def clear(self, prefix: str, *, token: str | None = None) -> int:
        """Delete every key of `prefix` (admin: needs the ADMIN_TOKEN); returns how many."""
        if self.near is not None:
            self.near.flush(prefix, None)
        reply: cache_pb2.ClearResponse = await self._call(
            "Clear", cache_pb2.ClearRequest(prefix=prefix), _admin(token), route=prefix, write=True
        )
        if self.near is not None:
            self.near.cleared(reply.position)
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
        reply: cache_pb2.ScanResponse = await self._call("Scan", request, route=prefix)
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
        stub = self._pool.stub(self.route(prefix) if prefix else self.address)
        call = stub.Export(cache_pb2.ExportRequest(prefix=prefix), metadata=_admin(token))
        try:
            async for entry in call:
                yield entry
        except grpc.aio.AioRpcError as exc:
            raise _error_from(exc) from None

    async def import_entries(
        self, chunks: AsyncIterable[Sequence[cache_pb2.ExportEntry]], *, token: str | None = None
    ) -> int:
        """Write entries chunk by chunk, each durable before the next (admin); how many."""

        async def requests() -> AsyncIterator[cache_pb2.ImportRequest]:
            async for entries in chunks:
                yield cache_pb2.ImportRequest(entries=entries)

        stub = self._pool.stub(self.address)
        try:
            reply = await stub.Import(requests(), metadata=_admin(token))
        except grpc.aio.AioRpcError as exc:
            raise _error_from(exc) from None
        return int(reply.imported)

    async def owners(self) -> cache_pb2.ListOwnersResponse:
        """The live members and the lease of each prefix, as the called node knows them."""
        reply: cache_pb2.ListOwnersResponse = await self._call(
            "ListOwners", cache_pb2.ListOwnersRequest()
        )
        return reply

    async def close(self) -> None:
        """Close the channels (and the near cache's streams); the client may be used again."""
        if self._watches is not None:
            await self._watches.close()
        await self._pool.close()


def _install(
    near: NearCache | None,
    reply: cache_pb2.GetResponse | cache_pb2.MGetResult,
    value: JSON,
    ticket: Ticket,
) -> None:
    """Offer a hit the server answered to the near cache (it refuses what is too old)."""
    if near is not None:
        near.install(reply.key, value, int(reply.ttl_remaining_seconds), reply.position, ticket)


def _mset_item(item: MSetItem) -> cache_pb2.MSetItem:
    if isinstance(item, Mapping):
        key, value, ttl = item["key"], item.get("value"), item.get("ttl", DEFAULT_TTL)
    else:
        key, value, ttl = item
    return cache_pb2.MSetItem(key=key, value=to_value(value), ttl_seconds=int(ttl or 0))


def _admin(token: str | None) -> list[tuple[str, str]] | None:
    """The metadata of an admin call."""
    return [("authorization", f"Bearer {token}")] if token else None


def _redirect_of(exc: grpc.aio.AioRpcError) -> cache_pb2.OwnerRedirect | None:
    for detail in status_details(exc):
        redirect = cache_pb2.OwnerRedirect()
        if detail.Unpack(redirect):
            return redirect
    return None


def never_sent(exc: grpc.aio.AioRpcError) -> bool:
    """Whether the call failed because no connection to the server could be made.

    Only then is a write known not to have been applied, and safe to send again.
    grpcio offers no structured signal for it: a connection refused and a connection
    lost mid-call are both UNAVAILABLE with no metadata, told apart only by grpc
    core's message ("failed to connect to all addresses; last error: ...").
    tests/client/test_never_sent.py provokes both against real sockets, so a grpcio
    that words it differently fails there, not silently here. (A server that did
    nothing says so itself, with an OwnerRedirect detail: see CacheClient._retry_at.)
    """
    return (
        exc.code() is grpc.StatusCode.UNAVAILABLE
        and "failed to connect" in (exc.details() or "").lower()
    )


def _error_from(exc: grpc.aio.AioRpcError) -> CacheError:
    code = exc.code()
    return _failure(code, exc.details() or code.name)


def _failure(code: grpc.StatusCode, message: str) -> CacheError:
    """The exception of a failed call or batch item with `code`."""
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
