"""A real cache process and near-cache clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.client import CacheClient
from tests.cache.harness import cache_env
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, running

BOUND_MS = 1000


@pytest.fixture
def cache_proc(tmp_path: Path) -> Iterator[ServiceProcess]:
    """One cache process on SQLite."""
    with running("cache", cache_env(tmp_path), tmp_path) as proc:
        yield proc


@pytest.fixture
async def reader(
    cache_proc: ServiceProcess, request: pytest.FixtureRequest
) -> AsyncIterator[CacheClient]:
    """A client with a 1 MiB near cache and its own registry (`reader.registry`); over
    the batching layer unless a test parametrizes it indirectly with False."""
    client = near_client(cache_proc.grpc_address, batching=getattr(request, "param", True))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def writer(cache_proc: ServiceProcess) -> AsyncIterator[CacheClient]:
    """A plain client (no near cache)."""
    client = CacheClient(cache_proc.grpc_address, timeout=5.0)
    try:
        yield client
    finally:
        await client.close()


def near_client(address: str, near_bytes: int = 1 << 20, *, batching: bool = True) -> CacheClient:
    """A client with a near cache, registry in `client.registry`."""
    registry = CollectorRegistry()
    client = CacheClient(
        address,
        timeout=5.0,
        registry=registry,
        near_cache_bytes=near_bytes,
        near_max_staleness_ms=BOUND_MS,
        batching=batching,
    )
    client.registry = registry  # type: ignore[attr-defined]
    return client


async def warm(client: CacheClient, key: str) -> None:
    """Read `key` until the near cache holds it and serves it (its stream started)."""
    near = client.near
    assert near is not None

    async def held() -> bool:
        await client.get(key)
        return key in near and near.lookup(key) is not None

    await eventually(held, within=20, what=f"{key} served from the near cache")
