"""The near cache as a layer: reads served from memory when trusted, every write
noted so that this client reads its own writes."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import struct_pb2
from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2
from services.client.kv import Hit, KeyValue, Metadata
from services.client.near.near_cache import Install, NearCache, Ticket
from services.client.near.watch_streams import WatchStreams
from services.client.transport import Transport


class NearLayer:
    """KeyValue over another, with a NearCache kept coherent by the owners' Watch streams."""

    def __init__(self, inner: KeyValue, near: NearCache, watches: WatchStreams) -> None:
        self._inner = inner
        self.near = near
        self._watches = watches

    @classmethod
    def over(
        cls,
        inner: KeyValue,
        transport: Transport,
        max_bytes: int,
        max_staleness_ms: int,
        registry: CollectorRegistry | None,
    ) -> NearLayer:
        """A near cache of `max_bytes` over `inner`, its streams through `transport`."""
        near = NearCache(max_bytes, max_staleness_ms, registry=registry)
        return cls(
            inner, near, WatchStreams(near, transport.stub, transport.route, transport.address)
        )

    async def get(self, key: str) -> Hit | None:
        """From memory if trusted, else from below (then offered to the near cache)."""
        held = self.near.lookup(key)
        if held is not None:
            return Hit(held[0], held[1], None)
        ticket = self.near.ticket()
        hit = await self._inner.get(key)
        if hit is not None:
            self._offer(key, hit, ticket)
        return hit

    async def mget(self, keys: Sequence[str]) -> list[Hit | None]:
        """What memory holds is served from it; only the rest is fetched, in one call."""
        hits: list[Hit | None] = [None] * len(keys)
        rest: list[int] = []
        for i, key in enumerate(keys):
            held = self.near.lookup(key)
            if held is None:
                rest.append(i)
            else:
                hits[i] = Hit(held[0], held[1], None)
        if not rest:
            return hits
        ticket = self.near.ticket()
        fetched = await self._inner.mget([keys[i] for i in rest])
        for i, hit in zip(rest, fetched, strict=True):
            hits[i] = hit
            if hit is not None:
                self._offer(keys[i], hit, ticket)
        return hits

    async def set(self, key: str, value: struct_pb2.Value, ttl: int) -> cache_pb2.Position:
        """Written below; a later read will not take an older reply."""
        self.near.forget(key)
        at = await self._inner.set(key, value, ttl)
        self.near.written((key,), at)
        return at

    async def delete(self, key: str) -> tuple[bool, cache_pb2.Position]:
        """Deleted below; a later read will not take an older reply."""
        self.near.forget(key)
        deleted, at = await self._inner.delete(key)
        self.near.written((key,), at)
        return deleted, at

    async def mset(
        self, items: Sequence[cache_pb2.MSetItem]
    ) -> tuple[int, list[cache_pb2.Position]]:
        """Written below, each prefix's keys noted at that prefix's position."""
        for item in items:
            self.near.forget(item.key)
        written, positions = await self._inner.mset(items)
        for at in positions:
            mine = at.prefix + ":"
            self.near.written((i.key for i in items if i.key.startswith(mine)), at)
        return written, positions

    async def clear(self, prefix: str, metadata: Metadata) -> tuple[int, cache_pb2.Position]:
        """Cleared below, and here."""
        self.near.flush(prefix, None)
        deleted, at = await self._inner.clear(prefix, metadata)
        self.near.cleared(at)
        return deleted, at

    async def close(self) -> None:
        """Close the streams (the near cache stops being vouched for), then below."""
        await self._watches.close()
        await self._inner.close()

    def _offer(self, key: str, hit: Hit, ticket: Ticket) -> None:
        """Offer a hit the server answered to the near cache (it refuses what is too old)."""
        at = hit.at
        if at is None:
            return
        if self.near.install(key, hit.value, hit.ttl_remaining, at, ticket) is Install.UNWATCHED:
            self._watches.want(at.prefix)
