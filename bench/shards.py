"""Durable Set at concurrency 64 on one PostgreSQL database, then on two shards
(CACHE_DB_URLS), both on the local server: fresh databases for each, dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from google.protobuf import struct_pb2

from bench import drivers
from bench.results import SET_PG_1SHARD, SET_PG_2SHARDS, Cell, Results
from bench.servers import cache_env
from bench.sizes import Sizes
from harness.services import start_service
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.channels import open_channel

ROWS = (SET_PG_1SHARD, SET_PG_2SHARDS)
CONCURRENCY = 64
PREFIXES = 64
ADMIN_DSN = os.environ.get("MARKETCACHE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def reachable() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL unreachable at {ADMIN_DSN}: {type(exc).__name__}"
    return None


@contextmanager
def databases(count: int) -> Iterator[list[str]]:
    """`count` fresh databases (SQLAlchemy URLs), dropped afterwards."""
    import psycopg

    names = [f"mc_bench_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield [f"{base}/{name}" for name in names]
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _sets_per_second(urls: list[str], sizes: Sizes, workdir: Path) -> list[float]:
    key = "CACHE_DB_URL" if len(urls) == 1 else "CACHE_DB_URLS"
    env = cache_env(workdir, CACHE_MAX_MEMORY_BYTES=str(2**30))
    del env["CACHE_DB_URL"]
    env[key] = ",".join(urls)
    proc = start_service("cache", env, workdir, timeout=120.0, label=f"shards-{len(urls)}")
    try:
        channel = open_channel(proc.grpc_address, None)
        try:
            stub = cache_pb2_grpc.CacheServiceStub(channel)
            value = struct_pb2.Value(string_value="x" * 100)

            async def op(i: int) -> None:
                request = cache_pb2.SetRequest(key=f"sh{i % PREFIXES}:{i}", value=value)
                await stub.Set(request, timeout=60.0)

            await drivers.throughput(op, CONCURRENCY, sizes.warmup_seconds)
            return [
                await drivers.throughput(op, CONCURRENCY, sizes.seconds) for _ in range(sizes.reps)
            ]
        finally:
            await channel.close(None)
    finally:
        proc.stop()


async def measure(results: Results, sizes: Sizes, workdir: Path) -> None:
    """Both rows, in one run: 1 shard, then 2 shards, on fresh databases each."""
    why = reachable()
    if why is not None:
        for row in ROWS:
            results.put_system(row, Cell.not_measured(why))
        return
    note = f"{PREFIXES} prefixes, 100-byte values, local PostgreSQL"
    with databases(1) as urls:
        results.put_system(
            SET_PG_1SHARD, Cell.of(await _sets_per_second(urls, sizes, workdir / "1"), note)
        )
    with databases(2) as urls:
        two = await _sets_per_second(urls, sizes, workdir / "2")
        results.put_system(SET_PG_2SHARDS, Cell.of(two, note + "; both shards on the same server"))
