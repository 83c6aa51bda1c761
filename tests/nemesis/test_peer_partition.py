"""A node cut off from its peer, and a client cut off from the owner's Watch stream,
with every socket left open (a blackhole proxy in the way)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.nemesis.proxy import BlackholeProxy
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.ownership.membership import preferred
from services.common.json_value import from_value, to_value
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


async def _sets_in_flight(proc: ServiceProcess) -> float:
    """Set calls the server has started and not yet finished."""
    url = f"http://127.0.0.1:{proc.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    counts = {"grpc_server_started_total": 0.0, "grpc_server_handled_total": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in counts and sample.labels.get("grpc_method") == "Set":
                counts[sample.name] += sample.value
    return counts["grpc_server_started_total"] - counts["grpc_server_handled_total"]


async def test_a_write_held_by_the_network_past_its_deadline_is_not_applied_when_it_lands(
    cache_proc: ServiceProcess,
) -> None:
    """The request and its cancellation (sent at the deadline) arrive together after
    the heal: the server must not apply it over the write acknowledged meanwhile.
    (One whose cancellation comes later may land: docs/ownership.md.)"""
    host, port = cache_proc.grpc_address.rsplit(":", 1)
    with BlackholeProxy(host, int(port)) as proxy:
        held_channel = grpc.aio.insecure_channel(proxy.address)
        direct_channel = grpc.aio.insecure_channel(cache_proc.grpc_address)
        held = cache_pb2_grpc.CacheServiceStub(held_channel)
        direct = cache_pb2_grpc.CacheServiceStub(direct_channel)

        def setting(value: str) -> cache_pb2.SetRequest:
            return cache_pb2.SetRequest(key="stock:HELD", value=to_value(value), ttl_seconds=60)

        try:
            await held.Set(setting("before"), timeout=10)
            proxy.cut(mode="hold")
            with pytest.raises(grpc.aio.AioRpcError) as gave_up:
                await held.Set(setting("held"), timeout=1.0)
            assert gave_up.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            await direct.Set(setting("after"), timeout=10)
            proxy.heal()
            # Sent behind the held bytes on one connection: they have reached the server.
            await held.Get(cache_pb2.GetRequest(key="stock:HELD"), timeout=10)

            async def no_set_in_flight() -> bool:
                return await _sets_in_flight(cache_proc) == 0

            await eventually(no_set_in_flight, 10, "a Set the server started never finished")
            got = await direct.Get(cache_pb2.GetRequest(key="stock:HELD"), timeout=10)
            assert from_value(got.value) == "after"
        finally:
            await held_channel.close(None)
            await direct_channel.close(None)
