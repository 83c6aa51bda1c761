"""The /metrics endpoint and GetMetrics report exactly the operations performed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.server import CacheServer
from services.cache.store.lru import entry_size
from services.common.json_value import to_value
from tests.cache.harness import cache_env, cache_stub, make_server

if TYPE_CHECKING:
    Stub = cache_pb2_grpc.CacheServiceAsyncStub

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(server: CacheServer) -> tuple[str, Samples]:
    url = f"http://127.0.0.1:{server.process.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_scraped_counters_and_get_metrics_equal_the_operations(
    server: CacheServer, stub: Stub
) -> None:
    for i in range(3):
        await stub.Set(cache_pb2.SetRequest(key=f"stock:S{i}", value=to_value(i)))
    await stub.MSet(
        cache_pb2.MSetRequest(
            items=[cache_pb2.MSetItem(key=f"news:N{i}", value=to_value(i)) for i in range(2)]
        )
    )
    await stub.Get(cache_pb2.GetRequest(key="stock:S0"))  # hit
    await stub.Get(cache_pb2.GetRequest(key="stock:S1"))  # hit
    await stub.Get(cache_pb2.GetRequest(key="stock:nope"))  # miss
    await stub.MGet(cache_pb2.MGetRequest(keys=["news:N0", "news:nope"]))  # hit, miss
    await stub.Delete(cache_pb2.DeleteRequest(key="stock:S2"))

    reply = await stub.GetMetrics(cache_pb2.GetMetricsRequest())
    text, samples = await scrape(server)

    assert (reply.hits, reply.misses, reply.keys) == (3, 2, 4)
    assert reply.hit_rate == 3 / 5
    m = reply.metrics
    assert (m.sets, m.deletes, m.evictions, m.expired) == (5, 1, 0, 0)
    assert m.memory_bytes == reply.memory_bytes > 0
    assert m.max_memory_bytes == 256 * 1024 * 1024
    per_prefix = {p.prefix: (p.hits, p.misses, p.keys) for p in m.prefixes}
    assert per_prefix == {"stock": (2, 1, 2), "news": (1, 1, 2)}

    assert value(samples, "cache_hits_total", prefix="stock") == 2
    assert value(samples, "cache_hits_total", prefix="news") == 1
    assert value(samples, "cache_misses_total", prefix="stock") == 1
    assert value(samples, "cache_misses_total", prefix="news") == 1
    assert value(samples, "cache_sets_total", prefix="stock") == 3
    assert value(samples, "cache_sets_total", prefix="news") == 2
    assert value(samples, "cache_deletes_total", prefix="stock") == 1
    assert value(samples, "cache_keys", prefix="stock") == 2
    assert value(samples, "cache_keys", prefix="news") == 2
    assert value(samples, "cache_memory_bytes") == m.memory_bytes
    assert value(samples, "cache_evictions_total") == 0
    assert value(samples, "cache_expired_total") == 0
    # 3 Sets + 1 MSet + 1 Delete: five transactions, six writes.
    assert value(samples, "cache_commit_seconds_count") == m.commits == 5
    assert value(samples, "cache_commit_batch_size_sum") == 6
    handled = "grpc_server_handled_total"
    svc = "marketcache.v1.CacheService"
    labels = {"grpc_type": "unary", "grpc_service": svc, "grpc_code": "OK"}
    assert value(samples, handled, grpc_method="Set", **labels) == 3
    assert value(samples, handled, grpc_method="Get", **labels) == 3
    for key in ("S0", "S1", "N0", "nope"):
        assert key not in text  # never a key as a label value


async def test_memory_is_reported_per_prefix(stub: Stub) -> None:
    big, small = to_value("x" * 10_000), to_value(1)
    await stub.Set(cache_pb2.SetRequest(key="big:a", value=big))
    await stub.MSet(
        cache_pb2.MSetRequest(
            items=[cache_pb2.MSetItem(key=f"small:{k}", value=small) for k in "ab"]
        )
    )
    m = (await stub.GetMetrics(cache_pb2.GetMetricsRequest())).metrics
    memory = {p.prefix: p.memory_bytes for p in m.prefixes}
    blob = small.SerializeToString()
    assert memory == {
        "big": entry_size("big:a", big.SerializeToString()),
        "small": entry_size("small:a", blob) + entry_size("small:b", blob),
    }
    # Nothing is waiting for its commit: the prefixes add up to the total.
    assert sum(memory.values()) == m.memory_bytes
    await stub.Delete(cache_pb2.DeleteRequest(key="big:a"))
    m = (await stub.GetMetrics(cache_pb2.GetMetricsRequest())).metrics
    assert {p.prefix: p.memory_bytes for p in m.prefixes}["big"] == 0
    assert sum(p.memory_bytes for p in m.prefixes) == m.memory_bytes


async def test_prefix_labels_are_capped_and_the_rest_count_as_other(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    server = make_server(tmp_path, registry, cache_env(tmp_path, CACHE_MAX_PREFIX_LABELS="3"))
    await server.start()
    try:
        async with cache_stub(server.address) as stub:
            for p in range(10):
                await stub.Set(cache_pb2.SetRequest(key=f"p{p}:k", value=to_value(p)))
                await stub.Get(cache_pb2.GetRequest(key=f"p{p}:k"))
            reply = await stub.GetMetrics(cache_pb2.GetMetricsRequest())
        _, samples = await scrape(server)
    finally:
        await server.stop()
    labels = {dict(lbl)["prefix"] for (name, lbl) in samples if name == "cache_hits_total"}
    assert labels == {"p0", "p1", "p2", "other"}
    assert value(samples, "cache_hits_total", prefix="other") == 7
    assert value(samples, "cache_keys", prefix="other") == 7
    assert {p.prefix: p.hits for p in reply.metrics.prefixes} == {
        "p0": 1,
        "p1": 1,
        "p2": 1,
        "other": 7,
    }
    assert reply.hits == 10
