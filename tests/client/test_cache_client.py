"""The Python cache client against a real in-process CacheService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from services.cache.server import CacheServer
from services.client import (
    CacheClient,
    CacheEntry,
    CacheError,
    CacheUnavailable,
    create_cache_instance,
)
from services.common.config import ConfigError, Env
from tests.cache.harness import ADMIN_TOKEN, make_server
from tests.conftest import free_port
from tests.support.polling import eventually


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[CacheServer]:
    srv = make_server(tmp_path, CollectorRegistry())
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture(params=[True, False], ids=["batched", "direct"])
async def client(
    server: CacheServer, registry: CollectorRegistry, request: pytest.FixtureRequest
) -> AsyncIterator[CacheClient]:
    """Each test runs over both bottom layers: batched (the default) and one call each."""
    c = CacheClient(server.address, timeout=10, registry=registry, batching=request.param)
    try:
        yield c
    finally:
        await c.close()


def test_no_client_without_cache_addr_or_when_disabled() -> None:
    assert create_cache_instance(Env({})) is None
    assert create_cache_instance(Env({"CACHE_ENABLED": "true"})) is None
    assert (
        create_cache_instance(Env({"CACHE_ADDR": "127.0.0.1:1", "CACHE_ENABLED": "false"})) is None
    )
    client = create_cache_instance(
        Env({"CACHE_ADDR": "127.0.0.1:1", "CACHE_CLIENT_TIMEOUT": "0.5"})
    )
    assert isinstance(client, CacheClient)
    assert (client.address, client.timeout) == ("127.0.0.1:1", 0.5)
    assert create_cache_instance(Env({"CACHE_ADDR": "127.0.0.1:1"}), timeout=2).timeout == 2  # type: ignore[union-attr]


def test_a_malformed_cache_addr_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="CACHE_ADDR"):
        create_cache_instance(Env({"CACHE_ADDR": "no-port-here"}))
    with pytest.raises(ConfigError, match="CACHE_ENABLED"):
        create_cache_instance(Env({"CACHE_ADDR": "127.0.0.1:1", "CACHE_ENABLED": "maybe"}))


JSON_VALUES: list[Any] = [
    {"symbol": "AAPL", "price": 189.25, "volume": 51_000_000, "ok": True, "note": None},
    [1, "two", 3.5, [4], {"five": 5}],
    "plain text",
    42,
    -0.5,
    True,
    [],
    {},
]


async def test_values_round_trip_and_a_stored_null_is_not_a_miss(client: CacheClient) -> None:
    for i, value in enumerate(JSON_VALUES):
        await client.set(f"stock:{i}", value, 300)
    for i, value in enumerate(JSON_VALUES):
        assert await client.get(f"stock:{i}") == value
    await client.set("stock:null", None, 300)
    assert await client.get("stock:null") is None
    entry = await client.get_entry("stock:null")
    assert isinstance(entry, CacheEntry)
    assert entry.value is None and 0 < entry.ttl_remaining_seconds <= 300
    assert await client.get_entry("stock:missing") is None


async def test_batches_delete_and_clear(client: CacheClient) -> None:
    written = await client.mset(
        [
            ("news:1", {"t": 1}, 60),
            {"key": "news:2", "value": [2], "ttl": 120},
            {"key": "news:3", "value": "three"},  # the seed's shape; ttl defaults to 3600
        ]
    )
    assert written == 3
    assert await client.mget(["news:3", "news:none", "news:1", "news:3"]) == [
        "three",
        None,
        {"t": 1},
        "three",
    ]
    entry = await client.get_entry("news:3")
    assert entry is not None and entry.ttl_remaining_seconds > 3500
    assert await client.delete("news:1") is True
    assert await client.delete("news:1") is False
    with pytest.raises(CacheError) as caught:
        await client.clear("news")
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert not isinstance(caught.value, CacheUnavailable)
    assert await client.clear("news", token=ADMIN_TOKEN) == 2
    assert await client.mget(["news:2", "news:3"]) == [None, None]


async def test_rejected_input_is_a_cache_error_with_the_code(client: CacheClient) -> None:
    with pytest.raises(CacheError) as caught:
        await client.get("no-prefix")
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "expected '<prefix>:<rest>'" in caught.value.message
    with pytest.raises(CacheError) as caught:
        await client.set("stock:x", 1, ttl=-1)
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(TypeError, match="not JSON-serializable"):
        await client.set("stock:x", {1, 2})


async def test_health_and_metrics_have_the_seed_shape(client: CacheClient) -> None:
    await client.set("stock:a", 1)
    await client.get("stock:a")
    await client.get("stock:b")
    health = await client.health()
    assert health["status"] == "healthy"
    assert health["enabled"] is True
    assert health["hitRate"] == 0.5
    assert health["metrics"]["hits"] == 1
    metrics = await client.get_metrics()
    assert (metrics["hits"], metrics["misses"], metrics["hitRate"], metrics["keys"]) == (
        1,
        1,
        0.5,
        1,
    )
    assert metrics["memoryBytes"] > 0
    assert metrics["prefixes"] == [
        {"prefix": "stock", "hits": 1, "misses": 1, "hitRate": 0.5, "keys": 1}
    ]


async def test_get_or_fetch_uses_the_cache_then_the_fetcher(client: CacheClient) -> None:
    calls: list[int] = []

    async def fetch() -> dict[str, int]:
        calls.append(1)
        return {"price": 10}

    assert await client.get_or_fetch("stock:AAPL", fetch, ttl=60) == {"price": 10}
    assert await client.get_or_fetch("stock:AAPL", fetch, ttl=60) == {"price": 10}
    assert len(calls) == 1
    assert client.fallbacks == 0

    async def nothing() -> None:
        calls.append(1)

    assert await client.get_or_fetch("stock:NONE", nothing) is None
    assert await client.get_entry("stock:NONE") is None  # None is not cached

    async def broken() -> int:
        raise RuntimeError("upstream down")

    with pytest.raises(RuntimeError, match="upstream down"):  # the fetcher's own errors surface
        await client.get_or_fetch("stock:ERR", broken)


# Batched only: there every caller's miss answers in one MGet, before the flight ends.
# One call each, a straggler's miss may come after the failed flight and start another.
@pytest.mark.parametrize("client", [True], ids=["batched"], indirect=True)
async def test_concurrent_misses_of_one_key_call_the_fetcher_once(client: CacheClient) -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def fetch() -> dict[str, int]:
        calls.append("quote:AAPL")
        await release.wait()  # every caller misses before the first fetch answers
        return {"price": 7}

    async def failing() -> int:
        calls.append("quote:ERR")
        await release.wait()
        raise RuntimeError("upstream down")

    readers = [asyncio.ensure_future(client.get_or_fetch("quote:AAPL", fetch)) for _ in range(50)]
    broken = [asyncio.ensure_future(client.get_or_fetch("quote:ERR", failing)) for _ in range(5)]
    await eventually(lambda: len(calls) == 2, what="both flights started")
    release.set()
    assert await asyncio.gather(*readers) == [{"price": 7}] * 50
    errors = await asyncio.gather(*broken, return_exceptions=True)
    assert all(isinstance(e, RuntimeError) and "upstream down" in str(e) for e in errors)
    assert sorted(calls) == ["quote:AAPL", "quote:ERR"]  # one fetch per key, not per caller
    assert (await client.get_entry("quote:AAPL")) is not None  # stored once, by the flight
    # A later miss (the error was not cached) fetches again.
    release.clear()
    release.set()
    with pytest.raises(RuntimeError):
        await client.get_or_fetch("quote:ERR", failing)
    assert calls.count("quote:ERR") == 2


async def test_get_or_fetch_survives_a_stopped_cache_and_counts_the_fallback(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    server = make_server(tmp_path, CollectorRegistry())
    await server.start()
    client = CacheClient(server.address, timeout=2, registry=registry)
    try:
        await client.set("stock:AAPL", {"price": 1})
        await server.stop()

        async def fetch() -> dict[str, int]:
            return {"price": 2}

        assert await client.get_or_fetch("stock:AAPL", fetch) == {"price": 2}
        assert client.fallbacks == 2  # the get, then the set
        assert registry.get_sample_value("cache_client_fallbacks_total", {"op": "get"}) == 1
        assert registry.get_sample_value("cache_client_fallbacks_total", {"op": "set"}) == 1
        with pytest.raises(CacheUnavailable):
            await client.get("stock:AAPL")
        health = await client.health()
        assert health["status"] == "unavailable" and health["reason"]
    finally:
        await client.close()


async def test_an_unreachable_address_is_cache_unavailable() -> None:
    client = CacheClient(f"127.0.0.1:{free_port()}", timeout=2)
    try:
        with pytest.raises(CacheUnavailable) as caught:
            await client.set("stock:a", 1)
        assert caught.value.code in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        fetched = await client.get_or_fetch("stock:a", _answer)
        assert fetched == 42
        assert client.fallbacks == 2
    finally:
        await client.close()


async def _answer() -> int:
    return 42
