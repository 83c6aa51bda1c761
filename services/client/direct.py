"""The bottom layer: each operation is its own RPC (a batch, one per owner)."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import struct_pb2

from marketcache.v1 import cache_pb2
from services.client.kv import Hit, Metadata, hit_of
from services.client.transport import Transport
from services.common.partition import merge


class Direct:
    """KeyValue over the transport, one RPC per call (per owner for a batch)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def get(self, key: str) -> Hit | None:
        """The entry of `key` (a unary Get), or None."""
        reply = await self._transport.call("Get", cache_pb2.GetRequest(key=key), route=key)
        return hit_of(reply)

    async def mget(self, keys: Sequence[str]) -> list[Hit | None]:
        """The entries of `keys`, one MGet per owner, in order."""
        parts = await self._transport.call_by_owner(
            keys, "MGet", lambda ix: cache_pb2.MGetRequest(keys=[keys[i] for i in ix]), write=False
        )
        return merge(len(keys), ((ix, [hit_of(r) for r in reply.results]) for ix, reply in parts))

    async def set(self, key: str, value: struct_pb2.Value, ttl: int) -> cache_pb2.Position:
        """A unary Set; its commit's position."""
        request = cache_pb2.SetRequest(key=key, value=value, ttl_seconds=ttl)
        reply = await self._transport.call("Set", request, route=key, write=True)
        position: cache_pb2.Position = reply.position
        return position

    async def delete(self, key: str) -> tuple[bool, cache_pb2.Position]:
        """A unary Delete: whether it existed, and its commit's position."""
        reply = await self._transport.call(
            "Delete", cache_pb2.DeleteRequest(key=key), route=key, write=True
        )
        return bool(reply.deleted), reply.position

    async def mset(
        self, items: Sequence[cache_pb2.MSetItem]
    ) -> tuple[int, list[cache_pb2.Position]]:
        """One MSet per owner: how many written, and each prefix's position."""
        parts = await self._transport.call_by_owner(
            [item.key for item in items],
            "MSet",
            lambda ix: cache_pb2.MSetRequest(items=[items[i] for i in ix]),
            write=True,
        )
        written = sum(int(reply.written) for _, reply in parts)
        return written, [at for _, reply in parts for at in reply.positions]

    async def clear(self, prefix: str, metadata: Metadata) -> tuple[int, cache_pb2.Position]:
        """A Clear at the prefix's owner: how many deleted, and its commit's position."""
        reply = await self._transport.call(
            "Clear", cache_pb2.ClearRequest(prefix=prefix), metadata, route=prefix, write=True
        )
        return int(reply.deleted), reply.position

    async def close(self) -> None:
        """Nothing to release (the transport's channels are the client's)."""
