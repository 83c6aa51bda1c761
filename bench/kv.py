"""The key-value workloads, run side by side on every peer with repetitions interleaved."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bench import drivers
from bench.peers import AsyncPeer, Peer, SyncPeer
from bench.results import (
    FLOOR,
    GET_C16,
    GET_C32,
    GET_C64,
    GET_P50,
    GET_P99,
    MC_CLIENT,
    MC_STUB,
    MGET,
    MIXED,
    REDIS,
    REDIS_AOF,
    REDIS_ASYNC,
    SET_C1,
    SET_C1_P50,
    SET_C64,
    SET_C64_ONE,
    Cell,
    Column,
    Results,
    Row,
)
from bench.servers import BenchError
from bench.sizes import Sizes
from bench.stats import percentile

log = logging.getLogger(__name__)

# Keys spread over this many prefixes, as market data spreads over stock:, history:,
# news:, sectors:...; one row (SET_C64_ONE) writes a single prefix to show that cost.
PREFIXES = 8
MGET_BATCH = 100
LOAD_BATCH = 500


@dataclass(frozen=True)
class Keyspace:
    """The preloaded keys and a fixed pseudo-random order to visit them in."""

    keys: tuple[str, ...]
    order: tuple[int, ...]

    @classmethod
    def build(cls, count: int, seed: int = 7) -> Keyspace:
        keys = tuple(f"bench{i % PREFIXES}:k{i:07d}" for i in range(count))
        rng = random.Random(seed)
        order = tuple(rng.randrange(count) for _ in range(1 << 16))
        return cls(keys, order)

    def key(self, i: int) -> str:
        return self.keys[self.order[i & 0xFFFF]]

    def one_prefix_key(self, i: int) -> str:
        # Every PREFIXES-th key is in prefix "bench0".
        index = self.order[i & 0xFFFF]
        return self.keys[index - index % PREFIXES]

    def window(self, i: int, size: int) -> Sequence[str]:
        start = self.order[i & 0xFFFF] % max(1, len(self.keys) - size)
        return self.keys[start : start + size]


Figures = dict[str, float]
Measure = Callable[[Peer, Keyspace, float], Awaitable[Figures]]


@dataclass(frozen=True)
class Workload:
    """One workload: the rows it fills, the peers it runs on, and why the others are n/a."""

    name: str
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    measure: Measure
    not_applicable: Mapping[str, str] = field(default_factory=dict)


def _hit(found: bool, key: str) -> None:
    if not found:
        raise BenchError(f"expected a hit for {key!r}: the preload did not land")


async def _get_sequential(peer: Peer, ks: Keyspace, seconds: float) -> Figures:
    if isinstance(peer, SyncPeer):
        sync_peer = peer

        def sync_op(i: int) -> None:
            key = ks.key(i)
            _hit(sync_peer.get(key), key)

        lat = drivers.latencies_sync(sync_op, seconds)
    else:
        async_peer = peer

        async def op(i: int) -> None:
            key = ks.key(i)
            _hit(await async_peer.get(key), key)

        lat = await drivers.latencies(op, seconds)
    return {GET_P50.key: percentile(lat, 50), GET_P99.key: percentile(lat, 99)}


def _get_concurrent(row: Row, concurrency: int) -> Measure:
    async def measure(peer: Peer, ks: Keyspace, seconds: float) -> Figures:
        assert isinstance(peer, AsyncPeer)

        async def op(i: int) -> None:
            key = ks.key(i)
            _hit(await peer.get(key), key)

        return {row.key: await drivers.throughput(op, concurrency, seconds)}

    return measure


async def _mget(peer: Peer, ks: Keyspace, seconds: float) -> Figures:
    if isinstance(peer, SyncPeer):
        sync_peer = peer

        def sync_op(i: int) -> None:
            keys = ks.window(i, MGET_BATCH)
            if sync_peer.mget(keys) != len(keys):
                raise BenchError("MGet missed preloaded keys")

        ops = drivers.throughput_sync(sync_op, seconds)
    else:
        async_peer = peer

        async def op(i: int) -> None:
            keys = ks.window(i, MGET_BATCH)
            if await async_peer.mget(keys) != len(keys):
                raise BenchError("MGet missed preloaded keys")

        ops = await drivers.throughput(op, 1, seconds)
    return {MGET.key: ops * MGET_BATCH}


async def _set_sequential(peer: Peer, ks: Keyspace, seconds: float) -> Figures:
    assert isinstance(peer, AsyncPeer)

    async def op(i: int) -> None:
        await peer.set(ks.key(i))

    lat = await drivers.latencies(op, seconds)
    return {SET_C1.key: 1e6 * len(lat) / sum(lat), SET_C1_P50.key: percentile(lat, 50)}


def _set_concurrent(row: Row, concurrency: int, one_prefix: bool) -> Measure:
    async def measure(peer: Peer, ks: Keyspace, seconds: float) -> Figures:
        assert isinstance(peer, AsyncPeer)
        pick = ks.one_prefix_key if one_prefix else ks.key

        async def op(i: int) -> None:
            await peer.set(pick(i))

        return {row.key: await drivers.throughput(op, concurrency, seconds)}

    return measure


async def _mixed(peer: Peer, ks: Keyspace, seconds: float) -> Figures:
    assert isinstance(peer, AsyncPeer)

    async def op(i: int) -> None:
        key = ks.key(i)
        # One op in ten is a write, spread evenly over the workers.
        if i % 10 == 9:
            await peer.set(key)
        else:
            _hit(await peer.get(key), key)

    return {MIXED.key: await drivers.throughput(op, 16, seconds)}


_SEQUENTIAL_ONLY = "the blocking client is sequential (see the asyncio column)"
_READ_ONLY_PEER = "the AOF server is the durable-write peer only"
_NOT_DURABLE = "not a durable write (the in-memory peer; see Redis AOF always)"
_NO_PREFIXES = "no prefixes: same as concurrency 64"

READ_PEERS = (FLOOR, REDIS, REDIS_ASYNC, MC_CLIENT, MC_STUB)
WORKLOADS = (
    Workload(
        "get-sequential",
        (GET_P50, GET_P99),
        READ_PEERS,
        _get_sequential,
        {REDIS_AOF.key: _READ_ONLY_PEER},
    ),
    Workload(
        "get-c16",
        (GET_C16,),
        (FLOOR, REDIS_ASYNC, MC_CLIENT, MC_STUB),
        _get_concurrent(GET_C16, 16),
        {REDIS.key: _SEQUENTIAL_ONLY, REDIS_AOF.key: _READ_ONLY_PEER},
    ),
    Workload(
        "get-c32",
        (GET_C32,),
        (FLOOR, REDIS_ASYNC, MC_CLIENT, MC_STUB),
        _get_concurrent(GET_C32, 32),
        {REDIS.key: _SEQUENTIAL_ONLY, REDIS_AOF.key: _READ_ONLY_PEER},
    ),
    Workload(
        "get-c64",
        (GET_C64,),
        (FLOOR, REDIS_ASYNC, MC_CLIENT, MC_STUB),
        _get_concurrent(GET_C64, 64),
        {REDIS.key: _SEQUENTIAL_ONLY, REDIS_AOF.key: _READ_ONLY_PEER},
    ),
    Workload("mget", (MGET,), READ_PEERS, _mget, {REDIS_AOF.key: _READ_ONLY_PEER}),
    Workload(
        "set-c1",
        (SET_C1, SET_C1_P50),
        (FLOOR, REDIS_AOF, MC_CLIENT, MC_STUB),
        _set_sequential,
        {REDIS.key: _NOT_DURABLE, REDIS_ASYNC.key: _NOT_DURABLE},
    ),
    Workload(
        "set-c64",
        (SET_C64,),
        (FLOOR, REDIS_AOF, MC_CLIENT, MC_STUB),
        _set_concurrent(SET_C64, 64, one_prefix=False),
        {REDIS.key: _NOT_DURABLE, REDIS_ASYNC.key: _NOT_DURABLE},
    ),
    Workload(
        "set-c64-one-prefix",
        (SET_C64_ONE,),
        (MC_CLIENT, MC_STUB),
        _set_concurrent(SET_C64_ONE, 64, one_prefix=True),
        {
            FLOOR.key: _NO_PREFIXES,
            REDIS.key: _NOT_DURABLE,
            REDIS_ASYNC.key: _NOT_DURABLE,
            REDIS_AOF.key: _NO_PREFIXES,
        },
    ),
    Workload(
        "mixed",
        (MIXED,),
        (FLOOR, REDIS_ASYNC, REDIS_AOF, MC_CLIENT, MC_STUB),
        _mixed,
        {REDIS.key: _SEQUENTIAL_ONLY},
    ),
)


async def preload(peer: AsyncPeer, ks: Keyspace) -> None:
    """Write every hot key once, so the Get workloads only hit."""
    for start in range(0, len(ks.keys), LOAD_BATCH):
        await peer.mset(ks.keys[start : start + LOAD_BATCH])


async def run_workloads(
    results: Results,
    peers: Mapping[str, Peer],
    missing: Mapping[str, Cell],
    ks: Keyspace,
    sizes: Sizes,
) -> None:
    """Run every workload on every present peer; record medians, and reasons for the rest."""
    for workload in WORKLOADS:
        active = [peers[c.key] for c in workload.columns if c.key in peers]
        figures: dict[tuple[str, str], list[float]] = {}
        for peer in active:
            await workload.measure(peer, ks, sizes.warmup_seconds)
        for rep in range(sizes.reps):
            # Rotate the order each repetition so no peer always runs first (or last)
            # while the machine is noisier.
            shift = rep % len(active) if active else 0
            for peer in active[shift:] + active[:shift]:
                got = await workload.measure(peer, ks, sizes.seconds)
                for row_key, value in got.items():
                    figures.setdefault((row_key, peer.column.key), []).append(value)
        log.info("workload %s done", workload.name)
        for row in workload.rows:
            for column in workload.columns:
                reps = figures.get((row.key, column.key))
                if reps:
                    results.put(row, column, Cell.of(reps))
                else:
                    results.put(row, column, missing.get(column.key, Cell.absent("not running")))
            for column_key, why in workload.not_applicable.items():
                results.kv[(row.key, column_key)] = Cell.not_applicable(why)
