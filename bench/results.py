"""What a run measured: rows (workloads) by columns (peers), each cell a median or a reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.stats import median


@dataclass(frozen=True)
class Column:
    """A peer in the side-by-side table."""

    key: str
    label: str


@dataclass(frozen=True)
class Row:
    """One measured quantity."""

    key: str
    label: str
    unit: str
    # True when a bigger figure is better (throughput), False for latency, memory, time.
    higher_is_better: bool


@dataclass(frozen=True)
class Cell:
    """A figure (the median of `reps`), or the reason there is none."""

    value: float | None = None
    note: str = ""
    reps: tuple[float, ...] = ()

    @classmethod
    def of(cls, reps: list[float], note: str = "") -> Cell:
        """The median of the repetitions' figures."""
        return cls(value=median(reps), note=note, reps=tuple(reps))

    @classmethod
    def absent(cls, why: str) -> Cell:
        """The peer is not there (e.g. no redis-server on this machine)."""
        return cls(note=f"absent: {why}")

    @classmethod
    def not_measured(cls, why: str) -> Cell:
        """The workload could not run (e.g. a service that has not landed yet)."""
        return cls(note=f"not measured: {why}")

    @classmethod
    def not_applicable(cls, why: str) -> Cell:
        """The workload makes no sense for this peer."""
        return cls(note=f"n/a: {why}")


FLOOR = Column("floor", "floor (bare grpc.aio, dict)")
REDIS = Column("redis", "Redis (redis-py sync)")
REDIS_ASYNC = Column("redis_async", "Redis (redis-py asyncio)")
REDIS_AOF = Column("redis_aof", "Redis AOF always (asyncio)")
MC_CLIENT = Column("mc_client", "marketcache (CacheClient)")
MC_STUB = Column("mc_stub", "marketcache (raw stub)")
COLUMNS = (FLOOR, REDIS, REDIS_ASYNC, REDIS_AOF, MC_CLIENT, MC_STUB)

GET_P50 = Row("get_seq_p50", "Get hit, sequential: p50", "µs", False)
GET_P99 = Row("get_seq_p99", "Get hit, sequential: p99", "µs", False)
GET_C16 = Row("get_c16", "Get hit, concurrency 16", "ops/s", True)
GET_C32 = Row("get_c32", "Get hit, concurrency 32", "ops/s", True)
GET_C64 = Row("get_c64", "Get hit, concurrency 64", "ops/s", True)
MGET = Row("mget100", "MGet of 100 keys, sequential", "keys/s", True)
SET_C1 = Row("set_c1", "Durable Set, concurrency 1", "ops/s", True)
SET_C1_P50 = Row("set_c1_p50", "Durable Set, concurrency 1: p50", "µs", False)
SET_C64 = Row("set_c64", "Durable Set, concurrency 64", "ops/s", True)
SET_C64_ONE = Row("set_c64_one_prefix", "Durable Set, concurrency 64, one prefix", "ops/s", True)
MIXED = Row("mixed", "Mixed 90% Get / 10% Set, concurrency 16", "ops/s", True)
MEMORY = Row("memory_per_key", "Memory per key (RSS delta / keys)", "bytes", False)
KV_ROWS = (
    GET_P50,
    GET_P99,
    GET_C16,
    GET_C32,
    GET_C64,
    MGET,
    SET_C1,
    SET_C1_P50,
    SET_C64,
    SET_C64_ONE,
    MIXED,
    MEMORY,
)

RESTART_EMPTY = Row("restart_empty", "Start to SERVING, empty database (baseline)", "s", False)
RESTART_SERVING = Row("restart_serving", "Restart: process start to SERVING", "s", False)
RESTART_HIT = Row("restart_first_hit", "Restart: process start to first Get hit", "s", False)
SNAP_WARM_P50 = Row("snapshot_warm_p50", "REST sector snapshot, warm: p50", "ms", False)
SNAP_WARM_P99 = Row("snapshot_warm_p99", "REST sector snapshot, warm: p99", "ms", False)
SNAP_COLD_P50 = Row("snapshot_cold_p50", "REST sector snapshot, cold: p50", "ms", False)
SNAP_SPEEDUP = Row("snapshot_speedup", "REST sector snapshot: cold p50 / warm p50", "x", True)
STAMPEDE_CALLS = Row(
    "stampede_upstream_calls", "Stampede: upstream calls per stampede", "calls", False
)
STAMPEDE_P50 = Row("stampede_p50", "Stampede: request latency p50", "ms", False)
REFRESH_AHEAD_CALLS = Row(
    "refresh_ahead_calls", "50 hot quotes, refresh-ahead on: upstream calls", "calls/min", False
)
REFRESH_PLAIN_CALLS = Row(
    "refresh_plain_calls", "50 hot quotes, refresh-ahead off: upstream calls", "calls/min", False
)
REFRESH_AHEAD_P99 = Row("refresh_ahead_p99", "50 hot quotes, refresh-ahead on: p99", "ms", False)
REFRESH_PLAIN_P99 = Row("refresh_plain_p99", "50 hot quotes, refresh-ahead off: p99", "ms", False)
DIRECT_P50 = Row("direct_get_p50", "Get via the owner (direct): p50", "µs", False)
FORWARD_P50 = Row("forwarded_get_p50", "Get via a non-owner (forwarded): p50", "µs", False)
# The near cache (bench/near_cache.py).
NEAR_GET = Row("near_get_p50", "Hot Get, client with near cache: p50", "µs", False)
PLAIN_GET = Row("near_plain_get_p50", "Hot Get, same client without near cache: p50", "µs", False)
REDIS_SYNC_GET = Row("near_redis_sync_p50", "Hot GET, redis-py sync: p50", "µs", False)
REDIS_ASYNC_GET = Row("near_redis_async_p50", "Hot GET, redis-py asyncio: p50", "µs", False)
DICT_GET = Row("near_dict_p50", "Hot lookup, plain dict (the limit): p50", "µs", False)
INVAL_IDLE_P50 = Row("near_inval_idle_p50", "Invalidation, idle: p50", "ms", False)
INVAL_IDLE_P99 = Row("near_inval_idle_p99", "Invalidation, idle: p99", "ms", False)
INVAL_LOAD_P50 = Row("near_inval_load_p50", "Invalidation, 1,000 writes/s: p50", "ms", False)
INVAL_LOAD_P99 = Row("near_inval_load_p99", "Invalidation, 1,000 writes/s: p99", "ms", False)
SNAP_NEAR_P50 = Row(
    "near_snapshot_warm_p50", "REST sector snapshot, warm, near on: p50", "ms", False
)
NEAR_ROWS = (
    NEAR_GET,
    PLAIN_GET,
    REDIS_SYNC_GET,
    REDIS_ASYNC_GET,
    DICT_GET,
    INVAL_IDLE_P50,
    INVAL_IDLE_P99,
    INVAL_LOAD_P50,
    INVAL_LOAD_P99,
    SNAP_NEAR_P50,
)
# PostgreSQL shards (#16): bench/shards.py.
SET_PG_1SHARD = Row(
    "set_c64_pg_1shard", "Durable Set, concurrency 64, PostgreSQL, 1 shard", "ops/s", True
)
SET_PG_2SHARDS = Row(
    "set_c64_pg_2shards", "Durable Set, concurrency 64, PostgreSQL, 2 shards", "ops/s", True
)
# A second language (#23): bench/node_client.py, both on the same cache.
SET_C64_NODE = Row(
    "set_c64_node", "Durable Set, concurrency 64, Node.js client (@grpc/grpc-js)", "ops/s", True
)
SET_C64_NODE_STUB = Row(
    "set_c64_node_stub", "Durable Set, concurrency 64, raw Python stub beside it", "ops/s", True
)
SYSTEM_ROWS = (
    RESTART_EMPTY,
    RESTART_SERVING,
    RESTART_HIT,
    SNAP_WARM_P50,
    SNAP_WARM_P99,
    SNAP_COLD_P50,
    SNAP_SPEEDUP,
    STAMPEDE_CALLS,
    STAMPEDE_P50,
    REFRESH_AHEAD_CALLS,
    REFRESH_PLAIN_CALLS,
    REFRESH_AHEAD_P99,
    REFRESH_PLAIN_P99,
    DIRECT_P50,
    FORWARD_P50,
    *NEAR_ROWS,
    SET_PG_1SHARD,
    SET_PG_2SHARDS,
    SET_C64_NODE,
    SET_C64_NODE_STUB,
)


@dataclass
class Results:
    """Everything one run measured, plus the conditions it ran under."""

    mode: str
    kv: dict[tuple[str, str], Cell] = field(default_factory=dict)
    system: dict[str, Cell] = field(default_factory=dict)
    # Free-text notes per row key, rendered under the tables.
    notes: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, str] = field(default_factory=dict)

    def put(self, row: Row, column: Column, cell: Cell) -> None:
        self.kv[(row.key, column.key)] = cell

    def cell(self, row: Row, column: Column) -> Cell:
        return self.kv.get((row.key, column.key), Cell.not_measured("workload did not run"))

    def put_system(self, row: Row, cell: Cell) -> None:
        self.system[row.key] = cell

    def system_cell(self, row: Row) -> Cell:
        return self.system.get(row.key, Cell.not_measured("workload did not run"))

    def fill_row(self, row: Row, columns: tuple[Column, ...], cell: Cell) -> None:
        """Give every listed column of `row` the same reason (e.g. a peer is absent)."""
        for column in columns:
            self.put(row, column, cell)
