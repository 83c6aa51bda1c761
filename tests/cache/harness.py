"""Build cache stores and in-process cache servers for tests (real SQLite, real gRPC)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import grpc
from google.protobuf import struct_pb2
from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2_grpc
from services.cache.clock import Clock
from services.cache.config import CacheSettings
from services.cache.ownership.owners import SingleNodeOwnership
from services.cache.server import CacheServer
from services.cache.storage.db import CacheDb
from services.cache.store.admission import Admission, StoreLimits
from services.cache.store.cache_store import CacheStore
from services.cache.store.keys import KeyRules
from services.cache.store.stats import CacheStats
from services.cache.store.ttl_policy import TtlPolicy
from services.common.config import Env
from services.common.json_value import from_value, to_value

ADMIN_TOKEN = "test-admin-token"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.wall = start
        self.mono = 1000.0

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def sqlite_url(tmp_path: Path, name: str = "cache.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def make_store(
    url: str,
    registry: CollectorRegistry,
    clock: Clock,
    *,
    depth: int = 1,
    **limits: int,
) -> CacheStore:
    """A store (not yet open) over the database at `url`."""
    keys = KeyRules(depth)
    bounds = StoreLimits(**limits)
    return CacheStore(
        CacheDb(url),
        keys=keys,
        admission=Admission(keys, TtlPolicy(3600, 30 * 86_400), bounds),
        stats=CacheStats(registry),
        ownership=SingleNodeOwnership("test-node", lambda: "127.0.0.1:0", clock, 10.0),
        clock=clock,
        limits=bounds,
    )


def cache_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Environment for a cache on ephemeral ports over SQLite under `tmp_path`."""
    env = {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": sqlite_url(tmp_path),
        "CACHE_NODE_ID": "node-a",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "GRPC_DRAIN_SECONDS": "5",
    }
    env.update(overrides)
    return env


def make_server(
    tmp_path: Path,
    registry: CollectorRegistry,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> CacheServer:
    """An in-process cache server (not yet started)."""
    settings = CacheSettings.from_env(Env(dict(env or cache_env(tmp_path))))
    return CacheServer(settings, registry, clock=clock)


@contextmanager
def writer_blocked(store: CacheStore) -> Iterator[Callable[[], None]]:
    """Park the writer thread so admitted writes pile up uncommitted; yields `release`.

    Always released on exit, so a failing test cannot hang the store's shutdown.
    """
    gate = threading.Event()
    entered = threading.Event()

    def park() -> None:
        entered.set()
        gate.wait(timeout=60)

    store.writer.submit(park)
    if not entered.wait(timeout=10):
        raise AssertionError("the writer thread did not pick up the parking job")
    try:
        yield gate.set
    finally:
        gate.set()


@asynccontextmanager
async def cache_stub(address: str) -> AsyncIterator[cache_pb2_grpc.CacheServiceAsyncStub]:
    """A CacheService stub on a channel closed afterwards."""
    async with grpc.aio.insecure_channel(address) as channel:
        yield cache_pb2_grpc.CacheServiceStub(channel)


def blob(obj: object) -> bytes:
    """A JSON value serialized the way the store keeps it."""
    return to_value(obj).SerializeToString()


def value_of(data: bytes) -> object:
    """The JSON value of a stored blob."""
    value = struct_pb2.Value()
    value.ParseFromString(data)
    return from_value(value)


async def read(store: CacheStore, key: str) -> object:
    """The JSON value of `key` in `store`, None on a miss."""
    hit = await store.get(key)
    return None if hit is None else value_of(hit.blob)
