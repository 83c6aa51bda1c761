"""A writer or a reader process for the near-cache history tests.

    python -m tests.near_cache.workload writer|reader ADDRESS OUT.jsonl STOP_FILE

The writer sets each key in turn to a value never used before (every fifth
write with a 1 s TTL, every 40th a Clear of the prefix when ADMIN_TOKEN is
set); readers (with the near cache on) read keys at random. Every operation
is recorded with time.monotonic(), which is one clock for every process of the
host. Both run until STOP_FILE exists.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import TextIO

from prometheus_client import CollectorRegistry

from services.client import CacheClient, CacheError

KEYS = [f"hist:k{i}" for i in range(8)]
READERS = 4


def stopped(stop: Path) -> bool:
    """Whether the test asked us to stop (a local stat: microseconds)."""
    return stop.exists()


def _record(out: TextIO, **item: object) -> None:
    out.write(json.dumps(item) + "\n")


async def writer(client: CacheClient, out: TextIO, stop: Path) -> None:
    token = os.environ.get("ADMIN_TOKEN")
    n = 0
    while not stopped(stop):
        n += 1
        if token and n % 40 == 0:
            sent = time.monotonic()
            try:
                await client.clear("hist", token=token)
                acked: float | None = time.monotonic()
            except CacheError:
                acked = None
            for key in KEYS:
                _record(out, op="write", key=key, value=None, sent=sent, acked=acked)
            continue
        key = KEYS[n % len(KEYS)]
        ttl = 1 if n % 5 == 0 else 3600
        sent = time.monotonic()
        try:
            await client.set(key, f"v{n}", ttl=ttl)
            acked = time.monotonic()
        except CacheError:
            acked = None  # unknown outcome: may or may not have been applied
            await asyncio.sleep(0.05)
        _record(out, op="write", key=key, value=f"v{n}", sent=sent, acked=acked, ttl=ttl)
        await asyncio.sleep(0.002)


async def reader(client: CacheClient, out: TextIO, stop: Path) -> None:
    async def one() -> None:
        while not stopped(stop):
            key = random.choice(KEYS)
            began = time.monotonic()
            try:
                value = await client.get(key)
            except CacheError:
                await asyncio.sleep(0.02)
                continue
            _record(out, op="read", key=key, value=value, began=began)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(one() for _ in range(READERS)))


async def main(role: str, address: str, out_path: str, stop_path: str) -> None:
    near = int(os.environ.get("CACHE_NEAR_CACHE_BYTES", "0")) if role == "reader" else 0
    registry = CollectorRegistry()
    client = CacheClient(
        address,
        timeout=2.0,
        registry=registry,
        near_cache_bytes=near,
        near_max_staleness_ms=int(os.environ.get("CACHE_NEAR_MAX_STALENESS_MS", "1000")),
    )
    # Line-buffered writes to a local file: the loop is never held up for long.
    with open(out_path, "w", buffering=1) as out:  # noqa: ASYNC230
        try:
            await (writer if role == "writer" else reader)(client, out, Path(stop_path))
        finally:
            await client.close()
            hits = registry.get_sample_value("cache_near_hits_total") or 0.0
            offset = registry.get_sample_value("cache_near_clock_offset_seconds")
            _record(out, op="stats", near_hits=hits, clock_offset=offset)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
