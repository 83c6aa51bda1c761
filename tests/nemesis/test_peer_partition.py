"""A node cut off from its peer, and a client cut off from the owner's Watch stream,
with every socket left open (a blackhole proxy in the way)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from harness.nemesis.proxy import BlackholeProxy
from marketcache.v1 import cache_pb2
from services.cache.ownership.membership import preferred
from tests.conftest import free_port
from tests.near_cache.conftest import BOUND_MS, near_client, warm
from tests.ownership.cluster import Cluster, put
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, running

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

NODES = ("node-a", "node-b")


@pytest.fixture
def proxied_b() -> Iterator[tuple[int, BlackholeProxy]]:
    """The port node-b will listen on, and a proxy to it that node-b advertises."""
    port = free_port()
    with BlackholeProxy("127.0.0.1", port) as proxy:
        yield port, proxy


async def test_a_forward_to_a_silent_owner_answers_unavailable_within_its_deadline(
    tmp_path: Path, proxied_b: tuple[int, BlackholeProxy]
) -> None:
    port, proxy = proxied_b
    cluster = Cluster(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
    try:
        await cluster.start("node-a")
        # Peers reach node-b only through the proxy; the test talks to it directly.
        await cluster.start(
            "node-b", CACHE_LISTEN=f"127.0.0.1:{port}", CACHE_ADVERTISE_ADDR=proxy.address
        )
        await cluster.wait_members(NODES)
        prefix = next(p for p in (f"b{i}" for i in range(200)) if preferred(p, NODES) == "node-b")
        await put(cluster.stub("node-b"), f"{prefix}:k", 1)
        owner = await cluster.settled_owner(prefix, NODES)
        assert owner.address == proxy.address
        # A forward through the healthy link first, so the peer channel is connected.
        await cluster.stub("node-a").Get(cache_pb2.GetRequest(key=f"{prefix}:k"), timeout=10)

        proxy.cut()
        deadline = 2.0
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await cluster.stub("node-a").Get(
                cache_pb2.GetRequest(key=f"{prefix}:k"), timeout=deadline
            )
        took = time.monotonic() - began
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE, refused.value.details()
        assert "node-b" in (refused.value.details() or "")
        assert took < deadline
        proxy.heal()
    finally:
        await cluster.close()


@pytest.fixture
def cache_proc(tmp_path: Path) -> Iterator[ServiceProcess]:
    from tests.cache.harness import cache_env

    with running("cache", cache_env(tmp_path), tmp_path) as proc:
        yield proc


async def test_a_silent_watch_stream_stops_the_near_cache_within_its_bound_and_is_counted(
    cache_proc: ServiceProcess,
) -> None:
    host, port = cache_proc.grpc_address.rsplit(":", 1)
    with BlackholeProxy(host, int(port)) as proxy:
        client = near_client(proxy.address)
        near = client.near
        assert near is not None
        registry = client.registry  # type: ignore[attr-defined]
        try:
            await client.set("stock:SLNT", 1)
            await warm(client, "stock:SLNT")
            proxy.cut()
            cut_at = time.monotonic()
            served_after: list[float] = []

            def stopped() -> bool:
                at = time.monotonic()
                if near.lookup("stock:SLNT") is None:
                    return True
                served_after.append(at - cut_at)
                return False

            await eventually(stopped, 10, "the near cache kept serving after the cut")
            # Served only while vouched for by a heartbeat sent before the cut.
            assert max(served_after, default=0.0) <= BOUND_MS / 1000

            def silent() -> float:
                value = registry.get_sample_value("cache_near_flushes_total", {"reason": "silent"})
                return float(value or 0.0)

            await eventually(silent, 20, "the silent stream was never counted")
            proxy.heal()
            await warm(client, "stock:SLNT")
        finally:
            await client.close()
