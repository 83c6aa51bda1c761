"""Through CacheClient as an application uses it (auto-batching on): Get, durable Set and
mixed 90/10 at concurrency 1, 16 and 64 against redis-py asyncio / Redis AOF always,
and a scaling row with one and two cache processes sharing one database.

Figures go into the report as a note (ops/s and the ratio to the Redis peer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import drivers
from bench.peers import VALUE_TEXT
from bench.results import Results
from bench.servers import cache_env, redis_binary, start_redis
from bench.sizes import QUICK, Sizes
from harness.services import start_service
from services.client import CacheClient

CONCURRENCY = (1, 16, 64)
KEYS = 1000
TTL = 3600
NOTE = "Client auto-batching (CacheClient, #12)"

Op = Callable[[int], Awaitable[None]]


def _ops(client: CacheClient) -> dict[str, Op]:
    keys = [f"cb{i % 8}:k{i}" for i in range(KEYS)]

    async def get(i: int) -> None:
        assert await client.get_entry(keys[i % KEYS]) is not None

    async def set_(i: int) -> None:
        await client.set(keys[i % KEYS], VALUE_TEXT, TTL)

    async def mixed(i: int) -> None:
        await (set_(i) if i % 10 == 0 else get(i))

    return {"get": get, "set": set_, "mixed": mixed}


def _redis_ops(client: object) -> dict[str, Op]:
    keys = [f"bench-cb:k{i}" for i in range(KEYS)]
    value = VALUE_TEXT.encode()

    async def get(i: int) -> None:
        assert await client.get(keys[i % KEYS]) is not None  # type: ignore[attr-defined]

    async def set_(i: int) -> None:
        await client.set(keys[i % KEYS], value, ex=TTL)  # type: ignore[attr-defined]

    async def mixed(i: int) -> None:
        await (set_(i) if i % 10 == 0 else get(i))

    return {"get": get, "set": set_, "mixed": mixed}


async def _preload(ops: dict[str, Op], at_once: int = 100) -> None:
    """Every key written, `at_once` at a time (the client batches them into one commit:
    a handful of commits, not KEYS; Redis gets at most `at_once` connections)."""
    for start in range(0, KEYS, at_once):
        await asyncio.gather(*(ops["set"](i) for i in range(start, min(start + at_once, KEYS))))


async def _table(ops: dict[str, Op], seconds: float) -> dict[tuple[str, int], float]:
    await _preload(ops)
    out: dict[tuple[str, int], float] = {}
    for name, op in ops.items():
        for c in CONCURRENCY:
            out[name, c] = await drivers.throughput(op, c, seconds)
    return out


async def measure(results: Results, sizes: Sizes, workdir: Path) -> str:
    """Run every row; returns (and stores as a note) the text table."""
    # A second per row makes the figures worth reading; a smoke run only checks the rows.
    seconds = sizes.seconds if sizes.mode == "smoke" else max(1.0, sizes.seconds)
    lines = [
        "| workload | c | CacheClient ops/s | Redis peer ops/s | ratio |",
        "|---|---|---|---|---|",
    ]
    cache = start_service("cache", cache_env(workdir / "cb-cache"), workdir, label="cb-cache")
    redis_async = redis_aof = None
    try:
        client = CacheClient(cache.grpc_address, timeout=30.0)
        mine = await _table(_ops(client), seconds)
        await client.close()
        peers: dict[str, dict[tuple[str, int], float]] = {}
        if redis_binary() is not None:
            redis_async = start_redis(workdir / "cb-redis", "--save", "")
            rc = redis_async.async_client()
            peers["get"] = peers["mixed-plain"] = await _table(_redis_ops(rc), seconds)
            await rc.aclose()
            redis_aof = start_redis(
                workdir / "cb-aof", "--appendonly", "yes", "--appendfsync", "always", "--save", ""
            )
            ac = redis_aof.async_client()
            peers["set"] = peers["mixed"] = await _table(_redis_ops(ac), seconds)
            await ac.aclose()
        for name, peer_label in (
            ("get", "redis-py asyncio"),
            ("set", "Redis AOF always"),
            ("mixed", "Redis AOF always"),
        ):
            for c in CONCURRENCY:
                ours = mine[name, c]
                theirs = peers.get(name, {}).get((name, c))
                ratio = f"{ours / theirs:.2f}x" if theirs else "n/a"
                shown = f"{theirs:,.0f} ({peer_label})" if theirs else "absent"
                lines.append(f"| {name} | {c} | {ours:,.0f} | {shown} | {ratio} |")
    finally:
        cache.stop()
        for server in (redis_async, redis_aof):
            if server is not None:
                server.stop()
    lines.append("")
    lines.append(await _scaling(workdir, seconds))
    text = "\n".join(lines)
    results.notes[NOTE] = text
    return text


async def _scaling(workdir: Path, seconds: float) -> str:
    """Get and Set at concurrency 64 through one client per process, 1 and 2 processes."""
    rows = ["| cache processes | Get c=64 ops/s | Set c=64 ops/s |", "|---|---|---|"]
    for replicas in (1, 2):
        data = workdir / f"cb-scale-{replicas}"
        procs = [
            start_service(
                "cache",
                cache_env(data, CACHE_NODE_ID=f"cb-{n}", CACHE_LEASE_SECONDS="5"),
                workdir,
                label=f"cb-scale-{replicas}-{n}",
            )
            for n in range(replicas)
        ]
        try:
            clients = [CacheClient(p.grpc_address, timeout=30.0) for p in procs]
            ops = [_ops(c) for c in clients]
            await _preload(ops[0])
            figures = []
            for name in ("get", "set"):
                # The clients share the 64 callers; each learns owners and goes direct.
                per = 64 // replicas
                totals = await asyncio.gather(
                    *(drivers.throughput(o[name], per, seconds) for o in ops)
                )
                figures.append(sum(totals))
            for c in clients:
                await c.close()
            rows.append(f"| {replicas} | {figures[0]:,.0f} | {figures[1]:,.0f} |")
        finally:
            for p in procs:
                p.stop()
    return "\n".join(rows)


if __name__ == "__main__":  # a quick run on its own: python -m bench.client_batching
    import tempfile

    async def _main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            print(await measure(Results(mode="quick"), QUICK, Path(tmp)))

    asyncio.run(_main())
