"""Clients against the nemesis cluster, recording what they saw.

One sequential writer per key (through the library client or a raw stub, at
random, to a random node), readers through the library and raw stubs (checked
for linearizability), and readers through near-cache clients (checked for
bounded staleness). Every written value is unique and carries "nemesis-", so a
read names the write it saw (and the mid-commit cut can find a commit). A write
refused RESOURCE_EXHAUSTED (a full disk, a full queue) is known not applied: it is
kept apart from the history (`Segment.refused`), so a read of its value is a
violation, not an outcome that was merely unknown.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import grpc
from prometheus_client import Counter

from harness.nemesis.cluster import NODES, NemesisCluster
from harness.nemesis.linearizability import READ, WRITE, Op
from harness.nemesis.staleness import Read, Write
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.client import CacheClient, CacheError
from services.common.json_value import from_value, to_value

# Every call's deadline (seconds): a call stuck at a silent node gives up.
CALL_TIMEOUT = 2.0
NEAR_BOUND_MS = 1000
# Failed writes' errors kept per key and round (the round's log shows its slowest key's).
ERRORS_KEPT = 3
TTL = 3600


@dataclass
class Segment:
    """What the clients saw between two settled states."""

    ops: dict[str, list[Op]] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    near_reads: list[Read] = field(default_factory=list)
    # key -> monotonic times of acknowledged writes
    acks: dict[str, list[float]] = field(default_factory=dict)
    # key -> values of writes refused RESOURCE_EXHAUSTED: known not applied
    refused: dict[str, list[object]] = field(default_factory=dict)
    # key -> what its failed writes were told, newest last (the last few kept)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, op: Op) -> None:
        self.ops.setdefault(key, []).append(op)
        if op.kind == WRITE:
            self.writes.append(Write(key, op.value, op.invoke, op.complete, float(TTL)))
            if op.complete is not None:
                self.acks.setdefault(key, []).append(op.complete)

    @property
    def operations(self) -> int:
        return sum(len(ops) for ops in self.ops.values()) + len(self.near_reads)


class Workload:
    """Writers and readers over `keys`, started and stopped round by round."""

    def __init__(self, cluster: NemesisCluster, keys: list[str], rng: random.Random) -> None:
        self.cluster = cluster
        self.keys = keys
        self.rng = rng
        self.segment = Segment()
        self._counter = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        addresses = [cluster.address(n) for n in NODES]
        self._plain = [CacheClient(a, timeout=CALL_TIMEOUT) for a in addresses]
        self._near = [
            CacheClient(
                a,
                timeout=CALL_TIMEOUT,
                near_cache_bytes=1 << 20,
                near_max_staleness_ms=NEAR_BOUND_MS,
            )
            for a in addresses[:2]
        ]
        self._channels = [grpc.aio.insecure_channel(a) for a in addresses]
        self._stubs = [cache_pb2_grpc.CacheServiceStub(c) for c in self._channels]

    def start(self) -> None:
        self._stop.clear()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._writer(k)) for k in self.keys]
        self._tasks += [loop.create_task(self._reader(i)) for i in range(4)]
        self._tasks += [loop.create_task(self._near_reader(c)) for c in self._near]

    async def stop(self) -> None:
        """Let every client finish the call it is in (each has a deadline), then stop."""
        self._stop.set()
        await asyncio.gather(*self._tasks)
        self._tasks = []

    async def close(self) -> None:
        for client in [*self._plain, *self._near]:
            await client.close()
        for channel in self._channels:
            await channel.close(None)

    async def read_everywhere(self, key: str, within: float = 60.0) -> object:
        """Read `key` through every node's raw stub until one answers; recorded as reads."""
        deadline = time.monotonic() + within
        while True:
            for stub in self._stubs:
                got = await self._raw_read(stub, key)
                if got is not None:
                    return got[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no node answered a read of {key} within {within}s")
            await asyncio.sleep(0.2)

    # -- the clients -------------------------------------------------------------

    async def _writer(self, key: str) -> None:
        while not self._stop.is_set():
            self._counter += 1
            value = f"nemesis-{key}-{self._counter}"
            invoke = time.monotonic()
            complete: float | None = None
            code = grpc.StatusCode.OK
            try:
                if self.rng.random() < 0.5:
                    await self.rng.choice(self._plain).set(key, value, TTL)
                else:
                    request = cache_pb2.SetRequest(key=key, value=to_value(value), ttl_seconds=TTL)
                    await self.rng.choice(self._stubs).Set(request, timeout=CALL_TIMEOUT)
                complete = time.monotonic()
            except CacheError as exc:
                code = exc.code
                self._failed(key, str(exc))
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                self._failed(key, f"{code.name}: {exc.details()}")
            if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                self.segment.refused.setdefault(key, []).append(value)
            else:
                self.segment.add(key, Op(WRITE, value, invoke, complete, client=0))
            await asyncio.sleep(self.rng.uniform(0.02, 0.08))

    def _failed(self, key: str, error: str) -> None:
        errors = self.segment.errors.setdefault(key, [])
        errors.append(error)
        del errors[:-ERRORS_KEPT]

    async def _reader(self, index: int) -> None:
        while not self._stop.is_set():
            key = self.rng.choice(self.keys)
            if self.rng.random() < 0.5:
                await self._raw_read(self.rng.choice(self._stubs), key, client=index + 1)
            else:
                invoke = time.monotonic()
                try:
                    value = await self.rng.choice(self._plain).get(key)
                except CacheError:
                    continue
                self.segment.add(key, Op(READ, value, invoke, time.monotonic(), client=index + 1))
            await asyncio.sleep(self.rng.uniform(0.005, 0.03))

    async def _raw_read(
        self, stub: cache_pb2_grpc.CacheServiceAsyncStub, key: str, client: int = 99
    ) -> tuple[object] | None:
        invoke = time.monotonic()
        try:
            reply = await stub.Get(cache_pb2.GetRequest(key=key), timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError:
            return None
        value = from_value(reply.value) if reply.found else None
        self.segment.add(key, Op(READ, value, invoke, time.monotonic(), client=client))
        return (value,)

    async def _near_reader(self, client: CacheClient) -> None:
        near = client.near
        assert near is not None
        while not self._stop.is_set():
            key = self.rng.choice(self.keys)
            hits = _count(near.metrics.hits)
            began = time.monotonic()
            try:
                value = await client.get(key)
            except CacheError:
                continue
            # Not served from memory: the server answered, a linearizable read.
            from_server = _count(near.metrics.hits) == hits
            self.segment.near_reads.append(Read(key, value, began, from_server, time.monotonic()))
            await asyncio.sleep(self.rng.uniform(0.001, 0.01))


def _count(counter: Counter) -> float:
    """A counter's value (the near clients have no registry to ask)."""
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                return float(sample.value)
    raise LookupError("a counter without a _total sample")
