"""CacheClient's auto-batching against a real server: fewer RPCs, each caller its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from services.cache.server import CacheServer
from services.client import CacheClient, CacheError
from tests.cache.harness import make_server


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[CacheServer, CollectorRegistry]]:
    registry = CollectorRegistry()
    srv = make_server(tmp_path, registry)
    await srv.start()
    try:
        yield srv, registry
    finally:
        await srv.stop()


@pytest.fixture
async def client(
    served: tuple[CacheServer, CollectorRegistry],
) -> AsyncIterator[CacheClient]:
    """A batching client (the default) with a deadline generous for a loaded machine."""
    c = CacheClient(served[0].address, timeout=60)
    try:
        yield c
    finally:
        await c.close()


def handled(registry: CollectorRegistry, method: str) -> float:
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if (
                sample.name == "grpc_server_handled_total"
                and sample.labels.get("grpc_method") == method
            ):
                total += sample.value
    return total


async def test_concurrent_calls_share_rpcs_and_each_gets_its_own_value(
    served: tuple[CacheServer, CollectorRegistry], client: CacheClient
) -> None:
    registry = served[1]
    await asyncio.gather(*(client.set(f"b:{i}", {"n": i}, 60) for i in range(200)))
    assert handled(registry, "WriteBatch") >= 1
    assert handled(registry, "WriteBatch") + handled(registry, "Set") < 200
    values = await asyncio.gather(*(client.get(f"b:{i}") for i in range(200)))
    assert values == [{"n": i} for i in range(200)]
    assert handled(registry, "MGet") >= 1
    assert handled(registry, "MGet") + handled(registry, "Get") < 200
    deleted = await asyncio.gather(client.delete("b:1"), client.delete("b:nope"))
    assert list(deleted) == [True, False]


async def test_a_bad_key_ttl_or_value_fails_only_its_own_caller(
    served: tuple[CacheServer, CollectorRegistry], client: CacheClient
) -> None:
    outcomes = await asyncio.gather(
        client.set("ok:a", 1),
        client.set("no-prefix", 2),
        client.set("ok:b", 3, ttl=-1),
        client.set("ok:c", "x" * (2 * 1024 * 1024)),
        client.set("ok:d", 4),
        return_exceptions=True,
    )
    assert outcomes[0] is None and outcomes[4] is None
    for bad, code in (
        (outcomes[1], grpc.StatusCode.INVALID_ARGUMENT),
        (outcomes[2], grpc.StatusCode.INVALID_ARGUMENT),
        (outcomes[3], grpc.StatusCode.RESOURCE_EXHAUSTED),
    ):
        assert isinstance(bad, CacheError) and bad.code is code, bad
    reads = await asyncio.gather(
        client.get("ok:a"), client.get("bad key"), client.get("ok:d"), return_exceptions=True
    )
    assert reads[0] == 1 and reads[2] == 4
    assert isinstance(reads[1], CacheError)
    assert reads[1].code is grpc.StatusCode.INVALID_ARGUMENT


async def test_writes_to_one_key_apply_in_call_order(
    served: tuple[CacheServer, CollectorRegistry], client: CacheClient
) -> None:
    await asyncio.gather(*(client.set("seq:k", i) for i in range(300)))
    assert await client.get("seq:k") == 299

    async def one_caller(n: int) -> list[object]:
        # One caller's own operations, in order, while others write too.
        await client.set(f"own:{n}", "first")
        await client.delete(f"own:{n}")
        await client.set(f"own:{n}", "last")
        return [await client.get(f"own:{n}")]

    results = await asyncio.gather(*(one_caller(n) for n in range(50)))
    assert results == [["last"]] * 50


async def test_5000_concurrent_calls_through_the_client_all_succeed(
    served: tuple[CacheServer, CollectorRegistry], client: CacheClient
) -> None:
    await client.set("burst:k", "v")
    got = await asyncio.gather(*(client.get("burst:k") for _ in range(5000)))
    assert got == ["v"] * 5000
    await asyncio.gather(*(client.set(f"burst:{i}", i) for i in range(5000)))
    assert await client.mget([f"burst:{i}" for i in range(0, 5000, 500)]) == list(
        range(0, 5000, 500)
    )


async def test_mset_keeps_its_all_or_nothing_validation(
    served: tuple[CacheServer, CollectorRegistry], client: CacheClient
) -> None:
    registry = served[1]
    with pytest.raises(CacheError):
        await client.mset([("m:a", 1, 60), ("no-prefix", 2, 60)])
    assert await client.get("m:a") is None
    assert handled(registry, "WriteBatch") == 0
