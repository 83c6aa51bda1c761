"""Many clients on one prefix over real gRPC: read-your-acknowledged-writes, group commit."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.server import CacheServer
from services.common.json_value import from_value, to_value
from tests.cache.harness import writer_blocked
from tests.support.polling import eventually

if TYPE_CHECKING:
    Stub = cache_pb2_grpc.CacheServiceAsyncStub


def on_disk(db_file: Path, key: str) -> bool:
    with sqlite3.connect(db_file) as conn:
        return (
            conn.execute("SELECT 1 FROM cache_entries WHERE key = ?", (key,)).fetchone() is not None
        )


async def test_fifty_writers_on_one_prefix_read_their_acknowledged_writes(
    tmp_path: Path, server: CacheServer, stub: Stub
) -> None:
    writers, rounds = 50, 6
    acknowledged: set[str] = set()
    stop_readers = asyncio.Event()
    revealed: list[tuple[str, bool]] = []

    async def writer(w: int) -> None:
        for n in range(rounds):
            value = {"writer": w, "round": n}
            await stub.Set(cache_pb2.SetRequest(key=f"stock:w{w}", value=to_value(value)))
            # Write-once keys: a reader finding one proves it was revealed.
            await stub.Set(cache_pb2.SetRequest(key=f"stock:once:{w}:{n}", value=to_value(n)))
            acknowledged.add(f"stock:once:{w}:{n}")
            got = await stub.Get(cache_pb2.GetRequest(key=f"stock:w{w}"))
            assert got.found and from_value(got.value) == value  # never older than our ack

    async def reader(seed: int) -> None:
        rng = random.Random(seed)
        while not stop_readers.is_set():
            key = f"stock:once:{rng.randrange(writers)}:{rng.randrange(rounds)}"
            got = await stub.Get(cache_pb2.GetRequest(key=key))
            if got.found:
                # The output gate: anything revealed is already committed to disk.
                revealed.append((key, on_disk(tmp_path / "cache.db", key)))

    readers = [asyncio.create_task(reader(s)) for s in range(5)]
    await asyncio.gather(*(writer(w) for w in range(writers)))
    stop_readers.set()
    await asyncio.gather(*readers)
    assert len(acknowledged) == writers * rounds
    assert all(durable for _, durable in revealed), [k for k, d in revealed if not d]
    reply = await stub.MGet(cache_pb2.MGetRequest(keys=sorted(acknowledged)))
    assert all(r.found for r in reply.results)


async def test_sixty_four_concurrent_sets_share_transactions(
    server: CacheServer, stub: Stub, registry: CollectorRegistry
) -> None:
    await asyncio.gather(
        *(stub.Set(cache_pb2.SetRequest(key=f"stock:{i}", value=to_value(i))) for i in range(64))
    )
    commits = registry.get_sample_value("cache_commit_batch_size_count") or 0
    writes = registry.get_sample_value("cache_commit_batch_size_sum") or 0
    singles = registry.get_sample_value("cache_commit_batch_size_bucket", {"le": "1.0"}) or 0
    assert writes == 64
    assert commits < 64
    assert singles < commits  # at least one transaction carried more than one write


async def test_writes_admitted_while_the_writer_is_busy_commit_as_one_group(
    server: CacheServer, stub: Stub, registry: CollectorRegistry
) -> None:
    store = server.store_of("stock")

    def put(i: int) -> asyncio.Future[cache_pb2.SetResponse]:
        return asyncio.ensure_future(
            stub.Set(cache_pb2.SetRequest(key=f"stock:{i}", value=to_value(i)))
        )

    # The prefix's lease is taken on the writer thread: take it before parking that.
    await put(-1)
    assert store.state().commits == 1
    with writer_blocked(store):
        # The first write is taken for a transaction at once and waits for the
        # writer thread; the 63 sent meanwhile queue up behind it.
        sets = [put(0)]
        await eventually(lambda: store.state().pending == 1 and store.state().queued == 0)
        sets += [put(i) for i in range(1, 64)]
        await eventually(lambda: store.state().queued == 63)
    await asyncio.gather(*sets)
    bucket = registry.get_sample_value

    assert store.state().commits == 1 + 2
    assert bucket("cache_commit_batch_size_count") == 1 + 2
    assert bucket("cache_commit_batch_size_sum") == 1 + 64
    assert bucket("cache_commit_batch_size_bucket", {"le": "1.0"}) == 1 + 1
    assert bucket("cache_commit_batch_size_bucket", {"le": "32.0"}) == 1 + 1
    assert bucket("cache_commit_batch_size_bucket", {"le": "64.0"}) == 1 + 2
