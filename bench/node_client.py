"""Durable Set at concurrency 64 from the Node.js client (tests/interop/node, @grpc/grpc-js)
beside the raw Python stub, against one cache on SQLite: what a second language costs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from google.protobuf import struct_pb2

from bench import drivers
from bench.peers import VALUE_TEXT
from bench.results import SET_C64_NODE, SET_C64_NODE_STUB, Cell, Results
from bench.servers import cache_env
from bench.sizes import Sizes
from harness.node_client import NODE_DIR, missing, node_env
from harness.services import start_service
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.channels import open_channel

ROWS = (SET_C64_NODE, SET_C64_NODE_STUB)
CONCURRENCY = 64
# As bench/kv.py's keyspace: keys over 8 prefixes, 200-character values, one-hour TTL.
PREFIXES = 8
TTL = 3600
NOTE = f"{PREFIXES} prefixes, 200-byte values, SQLite; one channel each, same cache process"


async def _stub_sets(address: str, sizes: Sizes) -> list[float]:
    channel = open_channel(address)
    try:
        stub = cache_pb2_grpc.CacheServiceStub(channel)
        value = struct_pb2.Value(string_value=VALUE_TEXT)

        async def op(i: int) -> None:
            key = f"bench{i % PREFIXES}:k{i % 100_000}"
            await stub.Set(cache_pb2.SetRequest(key=key, value=value, ttl_seconds=TTL))

        await drivers.throughput(op, CONCURRENCY, sizes.warmup_seconds)
        return [await drivers.throughput(op, CONCURRENCY, sizes.seconds) for _ in range(sizes.reps)]
    finally:
        await channel.close(None)


async def _node_sets(address: str, sizes: Sizes) -> list[float]:
    env = node_env(
        address,
        MARKETCACHE_BENCH_CONCURRENCY=str(CONCURRENCY),
        MARKETCACHE_BENCH_SECONDS=str(sizes.seconds),
        MARKETCACHE_BENCH_WARMUP_SECONDS=str(sizes.warmup_seconds),
        MARKETCACHE_BENCH_REPS=str(sizes.reps),
    )
    proc = await asyncio.create_subprocess_exec(
        "node",
        "bench.mjs",
        cwd=NODE_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    timeout = 120 + (sizes.seconds + 1) * sizes.reps + sizes.warmup_seconds
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"node bench.mjs exited {proc.returncode}: {err.decode()[-2000:]}")
    figures: list[float] = json.loads(out)["ops_per_second"]
    return figures


async def measure(results: Results, sizes: Sizes, workdir: Path) -> None:
    """Both rows on one fresh cache: the raw Python stub, then the Node client."""
    why = missing()
    if why is not None:
        results.put_system(SET_C64_NODE, Cell.not_measured(why))
        results.put_system(SET_C64_NODE_STUB, Cell.not_measured(why))
        return
    cache = start_service("cache", cache_env(workdir / "data"), workdir, label="node-cache")
    try:
        stub = await _stub_sets(cache.grpc_address, sizes)
        node = await _node_sets(cache.grpc_address, sizes)
    finally:
        cache.stop()
    results.put_system(SET_C64_NODE_STUB, Cell.of(stub, NOTE))
    results.put_system(SET_C64_NODE, Cell.of(node, NOTE))


if __name__ == "__main__":  # this section alone: python -m bench.node_client [--quick]
    import sys
    import tempfile

    from bench.sizes import FULL, QUICK

    async def _main() -> None:
        results = Results(mode="quick")
        with tempfile.TemporaryDirectory() as tmp:
            await measure(results, QUICK if "--quick" in sys.argv else FULL, Path(tmp))
        for row in ROWS:
            cell = results.system_cell(row)
            shown = f"{cell.value:,.0f}" if cell.value is not None else cell.note
            print(f"{row.label}: {shown} {row.unit} (reps {[round(r) for r in cell.reps]})")

    asyncio.run(_main())
