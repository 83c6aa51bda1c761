"""Scan, Export and Import over real gRPC on 127.0.0.1:0, and a scan's page against the overlay."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.storage.db import Row
from services.cache.store.cache_store import CacheStore
from services.cache.store.overlay import Pending, PrefixPending
from services.cache.store.scan import decode_cursor, encode_cursor, merge
from services.common.json_value import from_value, to_value
from tests.cache.harness import (
    ADMIN_TOKEN,
    FakeClock,
    blob,
    cache_stub,
    make_server,
    writer_blocked,
)

if TYPE_CHECKING:
    Stub = cache_pb2_grpc.CacheServiceAsyncStub
ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


async def scan_all(stub: Stub, prefix: str, *, limit: int = 0, match: str = "") -> list[str]:
    """Every key of a whole scan, page after page, in the order returned."""
    keys: list[str] = []
    cursor = ""
    for _ in range(10_000):
        reply = await stub.Scan(
            cache_pb2.ScanRequest(prefix=prefix, cursor=cursor, limit=limit, match=match)
        )
        keys.extend(reply.keys)
        cursor = reply.next_cursor
        if not cursor:
            return keys
    raise AssertionError("the scan never ended")


async def put_many(stub: Stub, keys: Sequence[str], ttl: int = 0) -> None:
    items = [cache_pb2.MSetItem(key=k, value=to_value({"k": k}), ttl_seconds=ttl) for k in keys]
    for start in range(0, len(items), 500):
        await stub.MSet(cache_pb2.MSetRequest(items=items[start : start + 500]))


async def export(stub: Stub, prefix: str = "") -> list[cache_pb2.ExportEntry]:
    return [e async for e in stub.Export(cache_pb2.ExportRequest(prefix=prefix), metadata=ADMIN)]


def chunks_of(*chunks: list[cache_pb2.ExportEntry]) -> AsyncIterator[cache_pb2.ImportRequest]:
    async def requests() -> AsyncIterator[cache_pb2.ImportRequest]:
        for entries in chunks:
            yield cache_pb2.ImportRequest(entries=entries)

    return requests()


def entry(key: str, value: Any, ttl: int = 0) -> cache_pb2.ExportEntry:
    return cache_pb2.ExportEntry(key=key, value=to_value(value), ttl_seconds=ttl)


async def test_scan_pages_through_a_prefix_with_match_and_limit(stub: Stub) -> None:
    keys = [f"stock:{name}" for name in ("AAPL", "AMZN", "MSFT", "NVDA", "ABNB", "TSLA")]
    await put_many(stub, [*keys, "news:AAPL:1", "stocky:X"])
    assert await scan_all(stub, "stock", limit=2) == sorted(keys)
    assert await scan_all(stub, "stock", limit=1, match="stock:A*") == [
        "stock:AAPL",
        "stock:ABNB",
        "stock:AMZN",
    ]
    # One page when the limit covers the prefix: the cursor is empty at once.
    reply = await stub.Scan(cache_pb2.ScanRequest(prefix="stock"))
    assert list(reply.keys) == sorted(keys) and reply.next_cursor == ""
    assert await scan_all(stub, "empty") == []


async def test_scan_refuses_bad_limits_cursors_and_prefixes(stub: Stub) -> None:
    bad = [
        (cache_pb2.ScanRequest(prefix="stock", limit=-1), "limit -1 is out of range"),
        (cache_pb2.ScanRequest(prefix="stock", limit=100_000), "CACHE_MAX_BATCH"),
        (cache_pb2.ScanRequest(prefix="stock", cursor="!!nope"), "nextCursor"),
        # A cursor of another prefix's scan is not this scan's.
        (cache_pb2.ScanRequest(prefix="stock", cursor=encode_cursor("news:A")), "nextCursor"),
        (cache_pb2.ScanRequest(prefix="has space"), "prefix"),
    ]
    for request, words in bad:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Scan(request)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert words in str(caught.value.details())


def test_a_cursor_is_opaque_and_round_trips() -> None:
    cursor = encode_cursor("stock:ÄÖ/+=")
    assert "=" not in cursor and "/" not in cursor
    assert decode_cursor(cursor, "stock") == "stock:ÄÖ/+="
    assert encode_cursor(None) == ""


async def test_every_key_live_throughout_a_scan_is_listed_despite_writes(stub: Stub) -> None:
    stable = [f"busy:s{i:04d}" for i in range(300)]
    await put_many(stub, stable)
    done = asyncio.Event()
    rng = random.Random(7)

    async def churn() -> int:
        # Keys that come and go all around the stable ones, while the scan runs.
        writes = 0
        while not done.is_set():
            key = f"busy:s{rng.randrange(300):04d}x{rng.randrange(10)}"
            if rng.random() < 0.5:
                await stub.Set(cache_pb2.SetRequest(key=key, value=to_value(1)))
            else:
                await stub.Delete(cache_pb2.DeleteRequest(key=key))
            writes += 1
        return writes

    writers = [asyncio.create_task(churn()) for _ in range(3)]
    try:
        listed = await scan_all(stub, "busy", limit=7)
    finally:
        done.set()
        writes = sum(await asyncio.gather(*writers))
    assert writes > 0
    assert set(stable) <= set(listed)
    assert listed == sorted(listed)  # one pass in key order, no key twice


async def test_expired_keys_are_not_listed_nor_exported(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    # Near the real time, and moved by less than a lease: the node keeps its lease.
    clock = FakeClock(time.time())
    server = make_server(tmp_path, registry, clock=clock)
    await server.start()
    try:
        async with cache_stub(server.address) as stub:
            await put_many(stub, ["exp:short1", "exp:short2"], ttl=2)
            await put_many(stub, ["exp:long"], ttl=500)
            assert await scan_all(stub, "exp") == ["exp:long", "exp:short1", "exp:short2"]
            clock.advance(3)
            assert await scan_all(stub, "exp") == ["exp:long"]
            exported = await export(stub, "exp")
            assert [(e.key, e.ttl_seconds) for e in exported] == [("exp:long", 497)]
    finally:
        await server.stop()


async def test_a_page_waits_for_pending_writes_and_lists_them(store: CacheStore) -> None:
    await store.mset([("p:a", blob(1), 0), ("p:c", blob(3), 0)])
    with writer_blocked(store) as release:
        writes = [
            asyncio.create_task(store.set("p:b", blob(2))),
            asyncio.create_task(store.delete("p:c")),
        ]
        await asyncio.sleep(0)  # both admitted (the overlay), neither committed
        page = asyncio.create_task(store.page("p", "", 10, values=True))
        await asyncio.sleep(0.05)
        assert not page.done(), "a page revealed writes before they were durable"
        release()
        listed = await page
        await asyncio.gather(*writes)
    assert [(e.key, e.blob) for e in listed.entries] == [("p:a", blob(1)), ("p:b", blob(2))]
    assert listed.last is None


def test_merge_overlays_pending_writes_within_the_page_range() -> None:
    loop = asyncio.new_event_loop()
    try:
        done = loop.create_future()
        rows = [Row(f"p:{c}", "p", b"", 100.0) for c in "bdf"]
        pending = PrefixPending(
            None,
            {
                "p:a": Pending(b"x", 100.0, done),  # new, in range: listed
                "p:d": Pending(None, 0.0, done),  # deleted: not listed
                "p:e": Pending(b"x", 5.0, done),  # already expired: not listed
                "p:z": Pending(b"x", 100.0, done),  # past this page's range: the next page's
            },
        )
        page = merge(rows, pending, after="", limit=3, now=10.0)
        assert [e.key for e in page.entries] == ["p:a", "p:b", "p:f"]
        assert page.last == "p:f"
        cleared = merge(rows, PrefixPending(done, {}), after="", limit=3, now=10.0)
        assert cleared.entries == [] and cleared.last == "p:f"
        # Pending keys beyond the limit shorten the page and its range.
        crowded = merge(
            rows[:1],
            PrefixPending(None, {"p:a": pending.writes["p:a"]}),
            after="",
            limit=1,
            now=10.0,
        )
        assert [e.key for e in crowded.entries] == ["p:a"] and crowded.last == "p:a"
    finally:
        loop.close()


async def test_export_streams_every_prefix_in_pages(stub: Stub) -> None:
    keys = [f"bulk:{i:04d}" for i in range(250)] + ["other:1", "other:2"]
    await put_many(stub, keys, ttl=900)
    everything = await export(stub)
    assert [e.key for e in everything] == sorted(keys)
    assert all(from_value(e.value) == {"k": e.key} for e in everything)
    assert all(899 <= e.ttl_seconds <= 900 for e in everything)
    assert [e.key for e in await export(stub, "other")] == ["other:1", "other:2"]


async def test_export_clear_import_round_trip_keeps_values_and_ttls(stub: Stub) -> None:
    values: dict[str, Any] = {
        "rt:a": {"price": 1.5, "tags": ["x", None]},
        "rt:b": [1, 2, 3],
        "rt:c": None,
        "rt:d": "text",
    }
    for i, (key, value) in enumerate(values.items()):
        await stub.Set(
            cache_pb2.SetRequest(key=key, value=to_value(value), ttl_seconds=100 * (i + 1))
        )
    before = await export(stub, "rt")
    await stub.Clear(cache_pb2.ClearRequest(prefix="rt"), metadata=ADMIN)
    assert await scan_all(stub, "rt") == []
    reply = await stub.Import(chunks_of(list(before[:3]), list(before[3:])), metadata=ADMIN)
    assert (reply.imported, reply.chunks) == (4, 2)
    after = await export(stub, "rt")
    assert {e.key: from_value(e.value) for e in after} == values
    ttl_before = {e.key: e.ttl_seconds for e in before}
    for e in after:
        assert abs(e.ttl_seconds - ttl_before[e.key]) <= 1


async def test_a_bad_chunk_is_refused_whole_and_earlier_chunks_stay(stub: Stub) -> None:
    good = [entry(f"imp:{i}", i) for i in range(3)]
    bad = [entry("imp:10", 10), entry("imp:11", 11), entry("imp:12", 12, ttl=-5)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Import(chunks_of(good, bad, [entry("imp:20", 20)]), metadata=ADMIN)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    message = str(caught.value.details())
    assert message.startswith("chunk 2: ") and "entries[2].ttl_seconds" in message
    assert await scan_all(stub, "imp") == ["imp:0", "imp:1", "imp:2"]
