"""Bursts past the server's limits: every call succeeds or is refused RESOURCE_EXHAUSTED,
and every one of them is counted in grpc_server_handled_total (none silently CANCELLED)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import grpc
from google.protobuf import struct_pb2
from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from tests.cache.harness import cache_env, make_server
from tests.support.polling import eventually

BURST = 3000


def handled(registry: CollectorRegistry, method: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for metric in registry.collect():
        for sample in metric.samples:
            if (
                sample.name == "grpc_server_handled_total"
                and sample.labels.get("grpc_method") == method
            ):
                counts[sample.labels["grpc_code"]] += int(sample.value)
    return counts


async def test_a_raw_burst_past_the_limits_is_answered_and_counted(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry()
    # Its database under tmp_path: an env without CACHE_DB_URL would use ./var/cache.db.
    server = make_server(tmp_path, registry, cache_env(tmp_path, GRPC_MAX_CONCURRENT_RPCS="8"))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = cache_pb2_grpc.CacheServiceStub(channel)
            await stub.Set(cache_pb2.SetRequest(key="burst:k", value=_one()))

            async def one() -> str:
                try:
                    await stub.Get(cache_pb2.GetRequest(key="burst:k"), timeout=120)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                        assert "GRPC_MAX_CONCURRENT_RPCS" in (exc.details() or "")
                    return exc.code().name
                return "OK"

            # The prefix's gate held: the first calls stay in flight, so the rest
            # of the burst is past the limit of 8 and must be refused, counted.
            async with server.store_of("burst").hold("burst"):
                calls = asyncio.gather(*(one() for _ in range(BURST)))
                await eventually(
                    lambda: handled(registry, "Get")["ResourceExhausted"] >= BURST - 8 or None,
                    within=120,
                    what="the calls past the limit refused",
                )
            codes = Counter(await calls)
    finally:
        await server.stop()
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
    assert codes["OK"] > 0
    counted = handled(registry, "Get")
    assert sum(counted.values()) == BURST, (counted, codes)
    assert counted["ResourceExhausted"] == codes["RESOURCE_EXHAUSTED"] >= BURST - 8
    assert counted["OK"] == codes["OK"]


def _one() -> struct_pb2.Value:
    from services.common.json_value import to_value

    return to_value(1)
