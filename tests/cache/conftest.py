"""Fixtures of the cache tests: a store with a fake clock, an in-process server, a stub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2_grpc
from services.cache.server import CacheServer
from services.cache.store.cache_store import CacheStore
from tests.cache.harness import FakeClock, make_server, make_store, sqlite_url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(
    tmp_path: Path, registry: CollectorRegistry, clock: FakeClock
) -> AsyncIterator[CacheStore]:
    """An open store over SQLite in tmp_path, on the fake clock."""
    s = make_store(sqlite_url(tmp_path), registry, clock)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def server(tmp_path: Path, registry: CollectorRegistry) -> AsyncIterator[CacheServer]:
    """A started in-process cache server on 127.0.0.1:0."""
    srv = make_server(tmp_path, registry)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def stub(server: CacheServer) -> AsyncIterator[cache_pb2_grpc.CacheServiceAsyncStub]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield cache_pb2_grpc.CacheServiceStub(channel)
