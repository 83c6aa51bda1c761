"""The same store on PostgreSQL: the SQL is dialect-portable (upserts, RETURNING, sweeps)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from services.cache.store.cache_store import CacheStore
from tests.cache.harness import FakeClock, blob, make_store, read, writer_blocked
from tests.support.polling import eventually

pytestmark = pytest.mark.postgres


async def test_the_store_works_on_postgresql(pg_url: str, clock: FakeClock) -> None:
    store = make_store(pg_url, CollectorRegistry(), clock)
    await store.open()
    try:
        await store.set("stock:AAPL", blob({"p": 1}), 60)
        await store.mset([("news:1", blob(1), 10), ("news:2", blob(2), 600)])
        assert await read(store, "stock:AAPL") == {"p": 1}
        assert (await store.delete("stock:AAPL")).entries == 1
        assert (await store.delete("stock:AAPL")).entries == 0
        clock.advance(11)
        assert await store.sweep() == 1
        assert await store.key_counts() == {"news": 1}
        assert (await store.clear("news")).entries == 1
        assert await store.get("news:2") is None
        await _same_key_twice_in_one_transaction(store)
    finally:
        await store.close()


async def _same_key_twice_in_one_transaction(store: CacheStore) -> None:
    # PostgreSQL refuses an upsert touching one row twice: the store must fold them.
    with writer_blocked(store):
        first = asyncio.ensure_future(store.set("dup:k", blob("first"), 600))
        await eventually(lambda: store.state().queued == 0 and store.state().pending == 1)
        rest = [asyncio.ensure_future(store.set("dup:k", blob(f"v{i}"), 600)) for i in range(5)] + [
            asyncio.ensure_future(store.mset([("dup:k", blob("last"), 600)]))
        ]
        await eventually(lambda: store.state().queued == 6)
    await asyncio.gather(first, *rest)
    assert await read(store, "dup:k") == "last"


async def test_a_restart_on_postgresql_recovers_entries(pg_url: str, clock: FakeClock) -> None:
    first = make_store(pg_url, CollectorRegistry(), clock)
    await first.open()
    await first.mset([(f"stock:{i}", blob(i), 600) for i in range(50)])
    await first.close()
    second = make_store(pg_url, CollectorRegistry(), clock)
    await second.open()
    try:
        assert second.state().holds_everything
        hits = await second.mget([f"stock:{i}" for i in range(50)])
        assert all(h is not None for h in hits)
    finally:
        await second.close()
