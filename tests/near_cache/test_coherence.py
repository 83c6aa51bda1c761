"""The near cache against a real cache process: hits, invalidation by another client,
read-your-writes, the read/invalidate race forced, Clear, TTL, mutation safety, the
memory bound, MGet partly from the near cache, and the client's and owner's metrics."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from services.client import CacheClient
from tests.cache.harness import ADMIN_TOKEN
from tests.near_cache.conftest import near_client, warm
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess


def sample(client: CacheClient, name: str, labels: dict[str, str] | None = None) -> float:
    registry: CollectorRegistry = client.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(name, labels or {})
    assert value is not None, name
    return value


async def test_a_hot_key_is_served_from_memory_and_a_write_elsewhere_invalidates_it(
    reader: CacheClient, writer: CacheClient
) -> None:
    await writer.set("stock:AAPL", {"price": 1})
    await warm(reader, "stock:AAPL")
    hits = sample(reader, "cache_near_hits_total")
    assert await reader.get("stock:AAPL") == {"price": 1}
    assert sample(reader, "cache_near_hits_total") == hits + 1
    await writer.set("stock:AAPL", {"price": 2})
    # The owner's invalidation reaches the reader: it reads the new value.
    near = reader.near
    assert near is not None
    await eventually(lambda: "stock:AAPL" not in near, what="the invalidation applied")
    assert await reader.get("stock:AAPL") == {"price": 2}
    assert sample(reader, "cache_near_invalidations_total") >= 1


@pytest.mark.parametrize("reader", [True, False], ids=["batched", "direct"], indirect=True)
async def test_read_your_writes_after_set_delete_mset_and_clear(reader: CacheClient) -> None:
    await reader.set("stock:MSFT", 1)
    await warm(reader, "stock:MSFT")
    for value in range(2, 30):
        await reader.set("stock:MSFT", value)
        assert await reader.get("stock:MSFT") == value
    await reader.delete("stock:MSFT")
    assert await reader.get("stock:MSFT") is None
    await reader.mset([("stock:MSFT", "m", 60), ("stock:IBM", "i", 60)])
    assert await reader.mget(["stock:MSFT", "stock:IBM"]) == ["m", "i"]
    await warm(reader, "stock:IBM")
    await reader.clear("stock", token=ADMIN_TOKEN)
    assert await reader.mget(["stock:MSFT", "stock:IBM"]) == [None, None]


@pytest.mark.parametrize("reader", [True, False], ids=["batched", "direct"], indirect=True)
async def test_a_reply_overtaken_by_an_invalidation_is_not_installed(
    reader: CacheClient, writer: CacheClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race, forced: hold the reply, apply the invalidation, release."""
    near = reader.near
    assert near is not None
    await writer.set("stock:RACE", "old")
    await warm(reader, "stock:RACE")
    near.forget("stock:RACE")  # the next read goes to the server
    replied, release = asyncio.Event(), asyncio.Event()
    real_call = reader.transport.call

    async def held_call(method: str, request: object, *args: object, **kw: object) -> object:
        reply = await real_call(method, request, *args, **kw)  # type: ignore[arg-type]
        if method == "Get":
            replied.set()
            await release.wait()
        return reply

    monkeypatch.setattr(reader.transport, "call", held_call)
    read = asyncio.create_task(reader.get("stock:RACE"))
    await asyncio.wait_for(replied.wait(), 10)
    applied = sample(reader, "cache_near_invalidations_total")
    await writer.set("stock:RACE", "new")
    await eventually(
        lambda: sample(reader, "cache_near_invalidations_total") > applied,
        what="the invalidation applied while the reply is held",
    )
    release.set()
    assert await read == "old"  # served before the write: a fine answer for that read
    monkeypatch.undo()
    assert "stock:RACE" not in near, "the stale reply was installed"
    assert await reader.get("stock:RACE") == "new"


async def test_clear_of_a_prefix_by_another_client_empties_it(
    reader: CacheClient, writer: CacheClient
) -> None:
    await writer.mset([(f"sector:S{i}", i, 60) for i in range(5)])
    for i in range(5):
        await warm(reader, f"sector:S{i}")
    await writer.clear("sector", token=ADMIN_TOKEN)
    near = reader.near
    assert near is not None
    await eventually(lambda: len(near) == 0, what="the whole prefix invalidated")
    assert await reader.mget([f"sector:S{i}" for i in range(5)]) == [None] * 5


async def test_an_entry_is_never_served_past_its_ttl(
    reader: CacheClient, writer: CacheClient
) -> None:
    loop = asyncio.get_running_loop()
    await writer.set("stock:TTL", "short", ttl=2)
    expired_by = loop.time() + 2  # the server's expiry is before this (admitted before the ack)
    served_near = 0
    while True:
        began, hits = loop.time(), sample(reader, "cache_near_hits_total")
        value = await reader.get("stock:TTL")
        if value is None:
            break
        if sample(reader, "cache_near_hits_total") > hits:
            served_near += 1
            assert began < expired_by, "served from the near cache past its TTL"
        assert loop.time() < expired_by + 30, "the entry never expired"
        await asyncio.sleep(0.01)
    assert await reader.get("stock:TTL") is None


async def test_a_caller_mutating_a_value_does_not_change_what_the_next_reads(
    reader: CacheClient, writer: CacheClient
) -> None:
    await writer.set("stock:MUT", {"prices": [1, 2], "meta": {"n": 1}})
    await warm(reader, "stock:MUT")
    first = await reader.get("stock:MUT")
    assert isinstance(first, dict)
    first["prices"].append(3)
    first["meta"]["n"] = 99
    assert await reader.get("stock:MUT") == {"prices": [1, 2], "meta": {"n": 1}}
    (again,) = await reader.mget(["stock:MUT"])
    assert again == {"prices": [1, 2], "meta": {"n": 1}}


async def test_mget_serves_what_it_holds_and_fetches_the_rest_in_one_call(
    reader: CacheClient, writer: CacheClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await writer.mset([(f"stock:M{i}", i, 60) for i in range(6)])
    for i in range(3):
        await warm(reader, f"stock:M{i}")
    calls: list[str] = []
    real_call = reader.transport.call

    async def counted(method: str, request: object, *args: object, **kw: object) -> object:
        calls.append(method)
        return await real_call(method, request, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(reader.transport, "call", counted)
    hits = sample(reader, "cache_near_hits_total")
    assert await reader.mget([f"stock:M{i}" for i in range(6)] + ["stock:none"]) == [
        0,
        1,
        2,
        3,
        4,
        5,
        None,
    ]
    monkeypatch.undo()
    assert calls == ["MGet"]
    assert sample(reader, "cache_near_hits_total") == hits + 3


async def test_memory_stays_under_the_configured_bytes(
    cache_proc: ServiceProcess, writer: CacheClient
) -> None:
    limit = 16 * 1024
    client = near_client(cache_proc.grpc_address, near_bytes=limit)
    try:
        await writer.mset([(f"stock:B{i}", "x" * 500, 60) for i in range(100)])
        await warm(client, "stock:B0")
        for _ in range(2):
            for i in range(100):
                await client.get(f"stock:B{i}")
                assert sample(client, "cache_near_bytes") <= limit
        near = client.near
        assert near is not None
        assert 0 < len(near) < 100  # it held some, and evicted the rest
    finally:
        await client.close()


async def test_the_owner_counts_subscribers_and_invalidations_sent(
    cache_proc: ServiceProcess, reader: CacheClient, writer: CacheClient
) -> None:
    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{cache_proc.metrics_port}/metrics") as r:
            return str(r.read().decode())

    await writer.set("stock:OBS", 1)
    await warm(reader, "stock:OBS")
    assert "cache_watch_subscribers 1.0" in scrape()
    await writer.set("stock:OBS", 2)
    near = reader.near
    assert near is not None
    await eventually(lambda: "stock:OBS" not in near, what="invalidated")
    text = scrape()
    assert "cache_watch_invalidations_sent_total 1.0" in text
    assert "cache_watch_invalidation_lag_seconds_count 1.0" in text
    for reason in ("gap", "epoch", "reset", "stream"):
        assert sample(reader, "cache_near_flushes_total", {"reason": reason}) >= 0
