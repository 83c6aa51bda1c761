"""One benchmark run: start the peers, run every section, collect the results."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import (
    client_batching,
    conditions,
    forwarding,
    kv,
    market_stack,
    memory,
    near_cache,
    node_client,
    refresh_ahead,
    shards,
    snapshot,
    stampede,
)
from bench.peers import (
    AsyncPeer,
    CacheClientPeer,
    Peer,
    RedisAsyncPeer,
    RedisSyncPeer,
    StubPeer,
)
from bench.restart import time_start
from bench.results import (
    DIRECT_P50,
    FLOOR,
    FORWARD_P50,
    MC_CLIENT,
    MC_STUB,
    MEMORY,
    REDIS,
    REDIS_AOF,
    REDIS_ASYNC,
    RESTART_EMPTY,
    RESTART_HIT,
    RESTART_SERVING,
    SNAP_COLD_P50,
    SNAP_SPEEDUP,
    SNAP_WARM_P50,
    SNAP_WARM_P99,
    STAMPEDE_CALLS,
    STAMPEDE_P50,
    Cell,
    Results,
    Row,
)
from bench.servers import (
    cache_env,
    redis_binary,
    service_available,
    shared_redis,
    start_floor,
    start_redis,
)
from bench.sizes import Sizes
from harness.services import start_service
from services.client import CacheClient

log = logging.getLogger(__name__)

NO_CACHE = "services.cache has not landed in this checkout"
STACK_SERVICES = ("cache", "market_data", "sector", "gateway")
NO_REDIS = "no Redis on 127.0.0.1:6379 and no redis-server binary"
# The memory workload holds every key in marketcache's memory layer, as Redis does.
BIG_MEMORY = str(8 * 2**30)
# The project's client defaults to a 250 ms deadline for request paths; a benchmark
# at concurrency 64 on two shared cores must not turn queueing into errors.
CLIENT_TIMEOUT = 30.0


@dataclass
class Run:
    """The state one run shares between its sections."""

    sizes: Sizes
    workdir: Path
    results: Results
    stack: AsyncExitStack
    # Set when a section failed: the report is still written, the exit code says so.
    failures: list[str]


Section = Callable[[Run], Awaitable[None]]


async def kv_section(run: Run) -> None:
    """The side-by-side key-value workloads on every peer."""
    results, stack, workdir = run.results, run.stack, run.workdir
    peers: dict[str, Peer] = {}
    missing: dict[str, Cell] = {}
    floor = start_floor(workdir / "floor")
    stack.callback(floor.stop)
    peers[FLOOR.key] = StubPeer(FLOOR, floor.grpc_address)

    shared = shared_redis(workdir)
    if shared is None:
        missing[REDIS.key] = missing[REDIS_ASYNC.key] = Cell.absent(NO_REDIS)
        results.conditions["redis"] = "absent: " + NO_REDIS
    else:
        stack.callback(shared.stop)
        stack.callback(shared.delete_own_keys)
        peers[REDIS.key] = RedisSyncPeer(REDIS, shared.sync_client())
        peers[REDIS_ASYNC.key] = RedisAsyncPeer(REDIS_ASYNC, shared.async_client())
        version = shared.sync_client().info("server")["redis_version"]
        results.conditions["redis"] = f"Redis {version}: {shared.description} (database "
        results.conditions["redis"] += f"{shared.db}, keys under its own prefix, deleted after)"

    if redis_binary() is None:
        missing[REDIS_AOF.key] = Cell.absent("no redis-server binary")
    else:
        aof = start_redis(
            workdir / "redis-aof", "--appendonly", "yes", "--appendfsync", "always", "--save", ""
        )
        stack.callback(aof.stop)
        peers[REDIS_AOF.key] = RedisAsyncPeer(REDIS_AOF, aof.async_client())

    if service_available("cache"):
        cache = start_service("cache", cache_env(workdir / "cache-kv"), workdir, label="cache-kv")
        stack.callback(cache.stop)
        client = CacheClient(cache.grpc_address, timeout=CLIENT_TIMEOUT)
        peers[MC_CLIENT.key] = CacheClientPeer(MC_CLIENT, client)
        peers[MC_STUB.key] = StubPeer(MC_STUB, cache.grpc_address)
    else:
        missing[MC_CLIENT.key] = missing[MC_STUB.key] = Cell.not_measured(NO_CACHE)

    ks = kv.Keyspace.build(run.sizes.hot_keys)
    results.notes["Key-value workloads"] = (
        f"{run.sizes.hot_keys:,} keys of 200-byte JSON strings spread over {kv.PREFIXES} "
        "prefixes, preloaded; reads pick keys in a fixed pseudo-random order and must all hit. "
        "The floor and the raw-stub column send the same protobuf requests on the same channel "
        "options (services.common.channels.open_channel). The CacheClient column adds the "
        "client's own work: JSON value conversion both ways (to_value/from_value) and a "
        f"deadline per call ({CLIENT_TIMEOUT:g} s here instead of its 0.25 s default, so "
        "queueing at concurrency 64 is measured rather than turned into errors)."
    )
    results.notes["Durable Set"] = (
        "marketcache acknowledges a Set only after its SQLite commit (WAL, synchronous=FULL, "
        "group commit); Redis AOF always acknowledges after the AOF fsync. The floor's Set is "
        "a dict assignment, not durable: it is the reference the target names (the cost of "
        "a unary gRPC call). In the mixed workload, writes are durable only for marketcache "
        "and Redis AOF."
    )
    try:
        # The sync Redis column shares a server with the asyncio one, and the client
        # column a process with the stub column: load each server once.
        for key in (FLOOR.key, REDIS_ASYNC.key, REDIS_AOF.key, MC_STUB.key):
            peer = peers.get(key)
            if isinstance(peer, AsyncPeer):
                await kv.preload(peer, ks)
        await kv.run_workloads(results, peers, missing, ks, run.sizes)
    finally:
        for peer in peers.values():
            if isinstance(peer, AsyncPeer):
                await peer.aclose()
            else:
                peer.close()


async def memory_section(run: Run) -> None:
    """Memory per key on the floor, Redis and marketcache; then marketcache restarts."""
    results, sizes, workdir = run.results, run.sizes, run.workdir
    keys = memory.memory_keys(sizes.memory_keys)
    note = "" if sizes.memory_keys == 1_000_000 else f"{sizes.memory_keys:,} keys"
    same = "the same server as the sync column"
    results.put(MEMORY, REDIS_ASYNC, Cell.not_applicable(same))
    results.put(MEMORY, REDIS_AOF, Cell.not_applicable("the in-memory server is the peer"))
    results.put(MEMORY, MC_CLIENT, Cell.not_applicable("the same process as the stub column"))

    floor = start_floor(workdir / "floor-memory", label="floor-memory")
    try:
        per_key = await memory.floor_bytes_per_key(floor, keys)
        results.put(MEMORY, FLOOR, Cell.of([per_key], note))
    finally:
        floor.stop()

    if redis_binary() is None:
        results.put(MEMORY, REDIS, Cell.absent("no redis-server binary"))
    else:
        server = start_redis(workdir / "redis-memory", "--save", "", "--appendonly", "no")
        try:
            per_key = await memory.redis_bytes_per_key(server, keys)
            results.put(MEMORY, REDIS, Cell.of([per_key], note))
        finally:
            server.stop()

    if not service_available("cache"):
        cell = Cell.not_measured(NO_CACHE)
        results.put(MEMORY, MC_STUB, cell)
        for row in (RESTART_EMPTY, RESTART_SERVING, RESTART_HIT):
            results.put_system(row, cell)
        return
    await _cache_memory_and_restart(run, keys, note)


async def _cache_memory_and_restart(run: Run, keys: list[str], note: str) -> None:
    results, sizes, workdir = run.results, run.sizes, run.workdir
    env = cache_env(workdir / "cache-memory", CACHE_MAX_MEMORY_BYTES=BIG_MEMORY)
    timing, proc = time_start(env, workdir, "cache-memory", hit_key=None)
    empty_start = [timing.serving]
    try:
        peer = StubPeer(MC_STUB, proc.grpc_address)
        try:
            per_key = await memory.grpc_bytes_per_key(proc, keys, peer)
        finally:
            await peer.aclose()
        results.put(MEMORY, MC_STUB, Cell.of([per_key], note))
        results.notes[MEMORY.label] = (
            f"{sizes.memory_keys:,} keys of 200-byte values loaded with MSet batches of "
            f"{memory.LOAD_BATCH}; resident memory of the server process after minus before "
            "(psutil RSS; Redis: used_memory_rss of a private redis-server), divided by the "
            "key count. marketcache runs with CACHE_MAX_MEMORY_BYTES large enough to hold "
            "every key in memory, as Redis does."
        )
    finally:
        proc.terminate()
    # The empty-database baseline: the same start-up with no rows to recover.
    for i in range(sizes.restarts - 1):
        empty_env = cache_env(workdir / f"cache-empty-{i}")
        timing, proc = time_start(empty_env, workdir, f"cache-empty-{i}", hit_key=None)
        proc.terminate()
        empty_start.append(timing.serving)
    results.put_system(RESTART_EMPTY, Cell.of(empty_start))

    serving: list[float] = []
    first_hit: list[float] = []
    unavailable = 0
    probe = keys[len(keys) // 2]
    # Restarts run with the default memory bound, as an operator would: the store
    # loads what fits and reads the rest from the database on demand.
    restart_env = cache_env(workdir / "cache-memory")
    for i in range(sizes.restarts):
        timing, proc = time_start(restart_env, workdir, f"cache-restart-{i}", hit_key=probe)
        proc.terminate()
        serving.append(timing.serving)
        assert timing.first_hit is not None
        first_hit.append(timing.first_hit)
        unavailable += timing.unavailable
    loaded = f"{sizes.memory_keys:,} keys on disk, default memory bound"
    results.put_system(RESTART_SERVING, Cell.of(serving, loaded))
    retried = f"; {unavailable} UNAVAILABLE answers retried" if unavailable else ""
    results.put_system(RESTART_HIT, Cell.of(first_hit, loaded + retried))


async def forwarding_section(run: Run) -> None:
    """A Get through a non-owner (forwarded) against one through the owner."""
    if not service_available("cache"):
        for row in (DIRECT_P50, FORWARD_P50):
            run.results.put_system(row, Cell.not_measured(NO_CACHE))
        return
    await forwarding.measure(run.results, run.sizes, run.workdir)


def _cache_landed(run: Run, rows: tuple[Row, ...]) -> bool:
    """Whether services.cache is here; if not, each of `rows` says so."""
    if service_available("cache"):
        return True
    for row in rows:
        run.results.put_system(row, Cell.not_measured(NO_CACHE))
    return False


async def shards_section(run: Run) -> None:
    """Durable Set at concurrency 64 on one PostgreSQL database and on two shards (#16)."""
    if _cache_landed(run, shards.ROWS):
        await shards.measure(run.results, run.sizes, run.workdir / "shards")


async def node_client_section(run: Run) -> None:
    """Durable Set at concurrency 64 from the Node.js client beside the raw Python stub (#23)."""
    if _cache_landed(run, node_client.ROWS):
        await node_client.measure(run.results, run.sizes, run.workdir / "node-client")


async def market_section(run: Run) -> None:
    """The REST snapshot warm against cold, and the stampede, through the whole system."""
    rows = (SNAP_WARM_P50, SNAP_WARM_P99, SNAP_COLD_P50, SNAP_SPEEDUP, STAMPEDE_CALLS, STAMPEDE_P50)
    absent = [name for name in STACK_SERVICES if not service_available(name)]
    if absent:
        for row in rows:
            run.results.put_system(row, Cell.not_measured(f"services not landed: {absent}"))
        return
    stack = market_stack.start(run.workdir / "stack")
    run.stack.callback(stack.stop)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await market_stack.wait_ready(stack, session, within=60.0)
        await snapshot.measure(run.results, run.sizes, stack, session)
        await stampede.measure(run.results, run.sizes, stack, session)


async def refresh_ahead_section(run: Run) -> None:
    """Upstream calls and read p99 for 50 hot quotes, with and without refresh-ahead."""
    absent = [name for name in ("cache", "market_data") if not service_available(name)]
    if absent:
        for row in refresh_ahead.ROWS:
            run.results.put_system(row, Cell.not_measured(f"services not landed: {absent}"))
        return
    await refresh_ahead.measure(run.results, run.sizes, run.workdir / "refresh-ahead")


async def near_cache_section(run: Run) -> None:
    """Hot Get with the near cache against Redis and the rest; invalidation latency."""
    absent = [name for name in STACK_SERVICES if not service_available(name)]
    if absent:
        for row in near_cache.ROWS:
            run.results.put_system(row, Cell.not_measured(f"services not landed: {absent}"))
        return
    await near_cache.measure(run.results, run.sizes.mode, run.workdir / "near-cache")


async def client_batching_section(run: Run) -> None:
    """CacheClient (auto-batching) against Redis at concurrency 1/16/64, and scaling (#12)."""
    if service_available("cache"):
        await client_batching.measure(run.results, run.sizes, run.workdir / "client-batching")


SECTIONS: dict[str, Section] = {
    "key-value workloads": kv_section,
    "memory and restart": memory_section,
    "snapshot and stampede": market_section,
    "refresh ahead": refresh_ahead_section,
    "forwarded get": forwarding_section,
    "near cache": near_cache_section,
    "client batching": client_batching_section,
    "postgresql shards": shards_section,
    "node client": node_client_section,
}


async def run_all(sizes: Sizes, workdir: Path, *, strict: bool) -> Run:
    """Run every section; with `strict`, the first failure propagates (smoke mode)."""
    results = Results(mode=sizes.mode)
    results.conditions = conditions.collect(sizes.mode, sizes.reps, sizes.seconds, workdir)
    async with AsyncExitStack() as stack:
        run = Run(sizes, workdir, results, stack, [])
        for name, section in SECTIONS.items():
            log.info("section: %s", name)
            try:
                async with AsyncExitStack() as section_stack:
                    run.stack = section_stack
                    await section(run)
            except Exception as exc:
                if strict:
                    raise
                log.error("section %s failed:\n%s", name, traceback.format_exc())
                run.failures.append(f"{name}: {exc}")
                results.notes[f"section {name}"] = f"failed, its rows are not measured: {exc}"
        run.stack = stack
    results.conditions["load average at end (1/5/15 min)"] = conditions.load_average()
    return run
