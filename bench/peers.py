"""The peers as key-value clients with one shape, so every workload drives them alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import grpc
import redis
import redis.asyncio
from google.protobuf import struct_pb2

from bench.results import Column
from bench.servers import REDIS_PREFIX
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.client import CacheClient
from services.common.channels import open_channel

# Every value in the key-value workloads is a 200-byte JSON string.
VALUE_TEXT = "v" * 200
TTL_SECONDS = 3600


class AsyncPeer(ABC):
    """A peer driven from the event loop."""

    def __init__(self, column: Column) -> None:
        self.column = column

    @abstractmethod
    async def get(self, key: str) -> bool:
        """Read a key; True on a hit."""

    @abstractmethod
    async def set(self, key: str) -> None:
        """Write the standard value; returns once acknowledged."""

    @abstractmethod
    async def mget(self, keys: Sequence[str]) -> int:
        """Read many keys; returns the number of hits."""

    @abstractmethod
    async def mset(self, keys: Sequence[str]) -> None:
        """Write the standard value to many keys."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections."""


class SyncPeer(ABC):
    """A peer with a blocking client (redis-py sync)."""

    def __init__(self, column: Column) -> None:
        self.column = column

    @abstractmethod
    def get(self, key: str) -> bool:
        """Read a key; True on a hit."""

    @abstractmethod
    def set(self, key: str) -> None:
        """Write the standard value."""

    @abstractmethod
    def mget(self, keys: Sequence[str]) -> int:
        """Read many keys; returns the number of hits."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


Peer = AsyncPeer | SyncPeer


class StubPeer(AsyncPeer):
    """A raw CacheServiceStub on one grpc.aio channel (floor or marketcache)."""

    def __init__(self, column: Column, address: str) -> None:
        super().__init__(column)
        # The project's own channel factory, so floor and marketcache get the same options.
        self._channel: grpc.aio.Channel = open_channel(address)
        self._stub = cache_pb2_grpc.CacheServiceStub(self._channel)
        self._value = struct_pb2.Value(string_value=VALUE_TEXT)

    async def get(self, key: str) -> bool:
        reply = await self._stub.Get(cache_pb2.GetRequest(key=key))
        return reply.found

    async def set(self, key: str) -> None:
        await self._stub.Set(
            cache_pb2.SetRequest(key=key, value=self._value, ttl_seconds=TTL_SECONDS)
        )

    async def mget(self, keys: Sequence[str]) -> int:
        reply = await self._stub.MGet(cache_pb2.MGetRequest(keys=keys))
        return sum(1 for result in reply.results if result.found)

    async def mset(self, keys: Sequence[str]) -> None:
        items = [
            cache_pb2.MSetItem(key=key, value=self._value, ttl_seconds=TTL_SECONDS) for key in keys
        ]
        await self._stub.MSet(cache_pb2.MSetRequest(items=items))

    async def aclose(self) -> None:
        await self._channel.close(None)


class RedisAsyncPeer(AsyncPeer):
    """redis-py asyncio against one server, keys under the harness prefix."""

    def __init__(self, column: Column, client: redis.asyncio.Redis) -> None:
        super().__init__(column)
        self._client = client
        self._value = VALUE_TEXT.encode()

    async def get(self, key: str) -> bool:
        return await self._client.get(REDIS_PREFIX + key) is not None

    async def set(self, key: str) -> None:
        await self._client.set(REDIS_PREFIX + key, self._value, ex=TTL_SECONDS)

    async def mget(self, keys: Sequence[str]) -> int:
        values = await self._client.mget([REDIS_PREFIX + key for key in keys])
        return sum(1 for value in values if value is not None)

    async def mset(self, keys: Sequence[str]) -> None:
        # SET EX per key in one pipeline: MSET cannot carry a TTL.
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.set(REDIS_PREFIX + key, self._value, ex=TTL_SECONDS)
        await pipe.execute()

    async def aclose(self) -> None:
        await self._client.aclose()


class RedisSyncPeer(SyncPeer):
    """redis-py's blocking client against one server, keys under the harness prefix."""

    def __init__(self, column: Column, client: redis.Redis) -> None:
        super().__init__(column)
        self._client = client
        self._value = VALUE_TEXT.encode()

    def get(self, key: str) -> bool:
        return self._client.get(REDIS_PREFIX + key) is not None

    def set(self, key: str) -> None:
        self._client.set(REDIS_PREFIX + key, self._value, ex=TTL_SECONDS)

    def mget(self, keys: Sequence[str]) -> int:
        values = self._client.mget([REDIS_PREFIX + key for key in keys])
        return sum(1 for value in values if value is not None)

    def close(self) -> None:
        self._client.close()


class CacheClientPeer(AsyncPeer):
    """The project's own client (services.client.CacheClient)."""

    def __init__(self, column: Column, client: CacheClient) -> None:
        super().__init__(column)
        self._client = client

    async def get(self, key: str) -> bool:
        return await self._client.get_entry(key) is not None

    async def set(self, key: str) -> None:
        await self._client.set(key, VALUE_TEXT, TTL_SECONDS)

    async def mget(self, keys: Sequence[str]) -> int:
        values = await self._client.mget(keys)
        return sum(1 for value in values if value is not None)

    async def mset(self, keys: Sequence[str]) -> None:
        await self._client.mset([(key, VALUE_TEXT, TTL_SECONDS) for key in keys])

    async def aclose(self) -> None:
        await self._client.close()
