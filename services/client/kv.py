"""The one narrow key-value interface the client's layers share.

CacheClient's public methods apply the policy once (JSON in and out, TTLs,
cache-aside fallbacks) and call one of these hooks. Under it sits a stack built
once at construction: Direct (one call per operation) or Batched (concurrent
calls share RPCs), optionally under NearLayer (hits from memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from google.protobuf import struct_pb2

from marketcache.v1 import cache_pb2
from services.common.json_value import JSON, from_value

Metadata = Sequence[tuple[str, str]] | None


@dataclass(frozen=True, slots=True)
class Hit:
    """A found entry: its value, whole seconds left, and the commit it stands at
    (None when it was served from this process's memory)."""

    value: JSON
    ttl_remaining: int
    at: cache_pb2.Position | None


class KeyValue(Protocol):
    """What every layer offers the one above (values already on the wire's form)."""

    async def get(self, key: str) -> Hit | None:
        """The entry of `key`, or None on a miss."""
        ...

    async def mget(self, keys: Sequence[str]) -> list[Hit | None]:
        """The entries of `keys` in order, None for each miss."""
        ...

    async def set(self, key: str, value: struct_pb2.Value, ttl: int) -> cache_pb2.Position:
        """Store `value` for `ttl` seconds; the commit's position."""
        ...

    async def delete(self, key: str) -> tuple[bool, cache_pb2.Position]:
        """Remove `key`: whether a live entry existed, and the commit's position."""
        ...

    async def mset(
        self, items: Sequence[cache_pb2.MSetItem]
    ) -> tuple[int, list[cache_pb2.Position]]:
        """Store many entries (atomic per prefix): how many, and each prefix's position."""
        ...

    async def clear(self, prefix: str, metadata: Metadata) -> tuple[int, cache_pb2.Position]:
        """Delete every key of `prefix` (admin): how many, and the commit's position."""
        ...

    async def close(self) -> None:
        """Release what the layer holds (streams); the layer may be used again."""
        ...


class Found(Protocol):
    """A read's reply for one key (cache_pb2.GetResponse and cache_pb2.MGetResult)."""

    @property
    def found(self) -> bool: ...
    @property
    def value(self) -> struct_pb2.Value: ...
    @property
    def ttl_remaining_seconds(self) -> int: ...
    @property
    def position(self) -> cache_pb2.Position: ...


def hit_of(reply: Found) -> Hit | None:
    """The Hit of a read's reply, None on a miss."""
    if not reply.found:
        return None
    return Hit(from_value(reply.value), int(reply.ttl_remaining_seconds), reply.position)
