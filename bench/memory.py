"""Memory per key: a server's resident memory after loading N keys, minus before, over N."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import psutil

from bench.peers import AsyncPeer, RedisAsyncPeer, StubPeer
from bench.results import FLOOR, REDIS
from bench.servers import RedisServer
from harness.process import ServiceProcess

LOAD_BATCH = 1000
LOAD_CONCURRENCY = 4


def memory_keys(count: int) -> list[str]:
    """The keys of the memory workload (spread over the same number of prefixes)."""
    return [f"mem{i % 8}:k{i:08d}" for i in range(count)]


async def load(peer: AsyncPeer, keys: Sequence[str]) -> float:
    """Write `keys` in MSet batches from a few concurrent writers; returns keys per second."""
    batches = [keys[i : i + LOAD_BATCH] for i in range(0, len(keys), LOAD_BATCH)]
    queue: asyncio.Queue[Sequence[str]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def writer() -> None:
        while not queue.empty():
            await peer.mset(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(LOAD_CONCURRENCY)))
    return len(keys) / (time.perf_counter() - start)


def rss(pid: int) -> int:
    """Resident set size of a process, bytes."""
    return int(psutil.Process(pid).memory_info().rss)


async def grpc_bytes_per_key(proc: ServiceProcess, keys: Sequence[str], peer: StubPeer) -> float:
    """RSS delta per key of a CacheService process (floor or marketcache) loaded via MSet."""
    # One round trip first, so connection set-up and lazily built state are in the baseline.
    await peer.get("mem0:warm")
    before = rss(proc.pid)
    await load(peer, keys)
    after = rss(proc.pid)
    return (after - before) / len(keys)


async def floor_bytes_per_key(proc: ServiceProcess, keys: Sequence[str]) -> float:
    """The floor's dict of protobuf Values, per key."""
    peer = StubPeer(FLOOR, proc.grpc_address)
    try:
        return await grpc_bytes_per_key(proc, keys, peer)
    finally:
        await peer.aclose()


async def redis_bytes_per_key(server: RedisServer, keys: Sequence[str]) -> float:
    """Redis used_memory_rss delta per key, on a private server (nothing else in it)."""
    before = await _settled_rss(server)
    peer = RedisAsyncPeer(REDIS, server.async_client())
    try:
        await load(peer, keys)
    finally:
        await peer.aclose()
    after = await _settled_rss(server)
    return (after - before) / len(keys)


async def _settled_rss(server: RedisServer, within: float = 5.0) -> int:
    # Redis refreshes used_memory_rss in its cron (every 100 ms at hz 10), so poll
    # until two readings agree rather than trusting the first.
    deadline = time.monotonic() + within
    last = server.used_memory_rss()
    while True:
        await asyncio.sleep(0.15)
        now = server.used_memory_rss()
        if now == last or time.monotonic() > deadline:
            return now
        last = now
