"""The store on a real SQLite file and a fake clock: TTL, sweeper, LRU, output gate, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from services.cache.store.cache_store import CacheStore
from services.cache.store.interface import DEGRADED, HEALTHY, Health
from services.cache.store.lru import entry_size
from services.cache.sweeper import Sweeper
from services.common.errors import ServiceError
from tests.cache.harness import (
    FakeClock,
    blob,
    make_store,
    read,
    sqlite_url,
    value_of,
    writer_blocked,
)
from tests.support.polling import eventually


def rows(url: str) -> dict[str, float]:
    """key -> expires_at straight from the table (a separate engine: what is on disk)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT key, expires_at FROM cache_entries")).all())
    finally:
        engine.dispose()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_an_entry_expires_at_its_ttl(store: CacheStore, clock: FakeClock) -> None:
    assert await store.set("stock:AAPL", blob({"p": 1}), 60) == 60
    clock.advance(59)
    hit = await store.get("stock:AAPL")
    assert hit is not None and hit.ttl_remaining == 1
    clock.advance(1)
    assert await store.get("stock:AAPL") is None
    assert await store.mget(["stock:AAPL"]) == [None]


async def test_ttl_zero_applies_the_default(store: CacheStore, clock: FakeClock) -> None:
    assert await store.set("stock:AAPL", blob(1), 0) == 3600
    hit = await store.get("stock:AAPL")
    assert hit is not None and hit.ttl_remaining == 3600


async def test_the_sweeper_deletes_expired_rows_and_counts_them(
    tmp_path: Path, store: CacheStore, clock: FakeClock, registry: CollectorRegistry
) -> None:
    await store.mset([("a:1", blob(1), 10), ("a:2", blob(2), 10), ("a:3", blob(3), 1000)])
    assert set(rows(sqlite_url(tmp_path))) == {"a:1", "a:2", "a:3"}
    clock.advance(11)
    sweeper = Sweeper(store, interval=3600)
    assert await sweeper.run_once() == 2
    assert set(rows(sqlite_url(tmp_path))) == {"a:3"}
    assert sample(registry, "cache_expired_total") == 2
    assert sample(registry, "cache_keys", prefix="a") == 1
    assert await sweeper.run_once() == 0
    assert sample(registry, "cache_expired_total") == 2


async def test_the_sweeper_deletes_in_chunks(
    tmp_path: Path, store: CacheStore, clock: FakeClock
) -> None:
    await store.mset([(f"a:{i}", blob(i), 5) for i in range(25)])
    clock.advance(6)
    assert await store.sweep(limit=10) == 25
    assert rows(sqlite_url(tmp_path)) == {}


async def test_evicted_entries_stay_readable_and_are_counted(
    tmp_path: Path, registry: CollectorRegistry, clock: FakeClock
) -> None:
    size = entry_size("stock:k00", blob("x" * 200))
    store = make_store(sqlite_url(tmp_path), registry, clock, max_memory_bytes=5 * size)
    await store.open()
    try:
        for i in range(20):
            await store.set(f"stock:k{i:02d}", blob("x" * 200), 600)
        assert store.state().entries == 5
        assert store.state().memory_bytes <= 5 * size
        assert sample(registry, "cache_evictions_total") == 15
        assert not store.state().holds_everything
        assert await read(store, "stock:k00") == "x" * 200  # from the database...
        assert store.remembered("stock:k00") is not None  # ...and admitted again
        assert await store.mget([f"stock:k{i:02d}" for i in range(20)]) != [None] * 20
        assert all(h is not None for h in await store.mget([f"stock:k{i:02d}" for i in range(20)]))
        assert sample(registry, "cache_memory_bytes") <= 5 * size
        assert await store.key_counts() == {"stock": 20}  # counted in the database now
    finally:
        await store.close()


async def test_restart_recovers_entries_and_memory_is_complete_when_they_fit(
    tmp_path: Path, clock: FakeClock
) -> None:
    url = sqlite_url(tmp_path)
    first = make_store(url, CollectorRegistry(), clock)
    await first.open()
    await first.mset([(f"stock:{i}", blob(i), 600) for i in range(10)])
    await first.set("stock:short", blob("s"), 5)
    await first.close()
    clock.advance(10)
    second = make_store(url, CollectorRegistry(), clock)
    await second.open()
    try:
        assert second.state().holds_everything
        assert second.state().entries == 10  # the expired one is not loaded
        assert [
            value_of(h.blob) for h in await second.mget([f"stock:{i}" for i in range(10)]) if h
        ] == list(range(10))
        assert await second.get("stock:short") is None
        assert await second.get("stock:never") is None
    finally:
        await second.close()


async def test_restart_with_more_than_memory_loads_the_newest_and_reads_the_rest(
    tmp_path: Path, clock: FakeClock
) -> None:
    url = sqlite_url(tmp_path)
    first = make_store(url, CollectorRegistry(), clock)
    await first.open()
    for i in range(10):
        await first.set(f"stock:{i}", blob("v" * 100), 600)
        clock.advance(1)  # distinct updated_at: a defined "most recent"
    await first.close()
    size = entry_size("stock:0", blob("v" * 100))
    second = make_store(url, CollectorRegistry(), clock, max_memory_bytes=4 * size)
    await second.open()
    try:
        assert not second.state().holds_everything
        assert {
            k for k in (f"stock:{i}" for i in range(10)) if second.remembered(k) is not None
        } == {
            "stock:6",
            "stock:7",
            "stock:8",
            "stock:9",
        }
        assert await read(second, "stock:0") == "v" * 100  # on demand from the database
    finally:
        await second.close()


async def test_a_read_waits_for_the_commit_of_a_write_it_reveals(store: CacheStore) -> None:
    with writer_blocked(store) as release:
        writing = asyncio.create_task(store.set("stock:AAPL", blob("new"), 60))
        await eventually(lambda: store.state().pending > 0)
        reading = asyncio.create_task(store.get("stock:AAPL"))
        other = await store.get("stock:OTHER")  # same prefix, not blocked by the pending write
        assert other is None
        for _ in range(20):
            await asyncio.sleep(0)
        assert not reading.done()  # the output gate holds the read back
        assert not writing.done()
        release()
        hit = await reading
    await writing
    assert hit is not None and value_of(hit.blob) == "new"


async def test_a_failed_commit_is_never_revealed_and_fails_its_writer(
    tmp_path: Path, store: CacheStore, registry: CollectorRegistry
) -> None:
    await store.set("fail:x", blob("old"), 600)
    # A real database failure for one key: SQLite aborts the whole transaction.
    engine = sa.create_engine(sqlite_url(tmp_path))
    with engine.begin() as conn:
        for event in ("INSERT", "UPDATE"):
            conn.execute(
                sa.text(
                    f"CREATE TRIGGER reject_{event.lower()} BEFORE {event} ON cache_entries "
                    "WHEN NEW.key = 'fail:x' BEGIN SELECT RAISE(ABORT, 'injected'); END"
                )
            )
    engine.dispose()
    with writer_blocked(store) as release:
        writing = asyncio.create_task(store.set("fail:x", blob("new"), 600))
        bystander = asyncio.create_task(store.set("fail:y", blob("y"), 600))
        await eventually(lambda: store.state().pending >= 2)
        reading = asyncio.create_task(store.get("fail:x"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not reading.done()
        release()
        for task in (writing, bystander):  # one transaction: both refused
            with pytest.raises(ServiceError) as caught:
                await task
            assert caught.value.code is grpc.StatusCode.UNAVAILABLE
        hit = await reading
    assert hit is not None and value_of(hit.blob) == "old"
    assert await read(store, "fail:x") == "old"
    assert await store.get("fail:y") is None
    assert sample(registry, "cache_commit_failures_total") == 1
    assert await store.health() == Health(DEGRADED, "the last commit failed")
    await store.set("fine:z", blob("z"), 600)  # the store keeps working
    assert (await store.health()).status == HEALTHY


async def test_mset_with_one_bad_item_writes_nothing(tmp_path: Path, store: CacheStore) -> None:
    for bad, code in [
        (("nokey", blob(1), 60), grpc.StatusCode.INVALID_ARGUMENT),
        (("a:b", blob(1), -5), grpc.StatusCode.INVALID_ARGUMENT),
        (("a:b", blob("x" * (2 * 1024 * 1024)), 60), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ]:
        with pytest.raises(ServiceError) as caught:
            await store.mset([("a:1", blob(1), 60), bad, ("a:3", blob(3), 60)])
        assert caught.value.code is code
        assert "items[1]." in caught.value.message
    assert rows(sqlite_url(tmp_path)) == {}
    assert await store.mget(["a:1", "a:3"]) == [None, None]


async def test_delete_and_clear_report_what_was_live(store: CacheStore, clock: FakeClock) -> None:
    await store.mset([("a:1", blob(1), 600), ("a:2", blob(2), 5), ("b:1", blob(3), 600)])
    assert (await store.delete("a:1")).entries == 1
    assert (await store.delete("a:1")).entries == 0
    clock.advance(6)
    assert (await store.delete("a:2")).entries == 0  # expired: not live
    await store.mset([("a:3", blob(3), 600), ("a:4", blob(4), 600)])
    assert (await store.clear("a")).entries == 2
    assert await store.mget(["a:3", "a:4", "b:1"]) != [None, None, None]
    assert [h is not None for h in await store.mget(["a:3", "a:4", "b:1"])] == [False, False, True]


async def test_writes_after_a_pending_clear_survive_it(store: CacheStore) -> None:
    await store.mset([("a:1", blob(1), 600), ("a:2", blob(2), 600)])
    with writer_blocked(store) as release:
        clearing = asyncio.create_task(store.clear("a"))
        await eventually(lambda: store.state().pending >= 1)
        writing = asyncio.create_task(store.set("a:2", blob("after"), 600))
        await eventually(lambda: store.state().pending >= 2)
        reading = asyncio.create_task(store.mget(["a:1", "a:2"]))
        release()
        assert (await clearing).entries == 2
        await writing
        hits = await reading
    assert hits[0] is None
    assert hits[1] is not None and value_of(hits[1].blob) == "after"


async def test_a_stopped_store_refuses_with_unavailable(tmp_path: Path, clock: FakeClock) -> None:
    store = make_store(sqlite_url(tmp_path), CollectorRegistry(), clock)
    with pytest.raises(ServiceError) as caught:
        await store.get("a:b")
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    await store.open()
    await store.close()
    with pytest.raises(ServiceError) as caught:
        await store.set("a:b", blob(1), 60)
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
