"""The shared database of a cluster (a SQLite file, or a fresh PostgreSQL database), and a
pair of in-process nodes over one SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.cache.ownership.membership import preferred
from services.cache.server import CacheServer
from tests.cache.harness import cache_env, make_server
from tests.ownership.cluster import Cluster
from tests.support.polling import eventually


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def cluster(db_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(db_url, tmp_path)
    try:
        yield c
    finally:
        await c.close()


NODES = ("node-a", "node-b")
PA = next(p for p in (f"a{i}" for i in range(100)) if preferred(p, NODES) == "node-a")
PB = next(p for p in (f"b{i}" for i in range(100)) if preferred(p, NODES) == "node-b")


# The product's default lease. Both nodes share this test's event loop, so a loaded
# machine delays their heartbeats and acquisitions together, and a lease is locally
# valid 3/4 of it after its transaction began: with 1 s and then 5 s a fresh acquisition
# lapsed before the loop got to use it ("another node holds its lease"). These tests are
# about routing, not lease timing.
PAIR_LEASE_SECONDS = 10


@dataclass
class Pair:
    """Two in-process cache nodes over one SQLite file, each with its own registry."""

    a: CacheServer
    b: CacheServer
    registries: dict[str, CollectorRegistry]

    def forwarded(self, node: str, method: str) -> float:
        """cache_forwarded_requests_total{method} of `node`."""
        value = self.registries[node].get_sample_value(
            "cache_forwarded_requests_total", {"method": method}
        )
        return value or 0.0


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    registries = {node: CollectorRegistry() for node in NODES}
    servers = [
        make_server(
            tmp_path,
            registries[node],
            cache_env(tmp_path, CACHE_NODE_ID=node, CACHE_LEASE_SECONDS=str(PAIR_LEASE_SECONDS)),
        )
        for node in NODES
    ]
    for server in servers:
        await server.start()
    try:

        def both_see_both() -> bool:
            return all(
                {m.node_id for m in s.ownership.members() if m.alive} == set(NODES) for s in servers
            )

        await eventually(both_see_both, 20, "the two nodes never saw each other")
        yield Pair(servers[0], servers[1], registries)
    finally:
        for server in servers:
            await server.stop()
