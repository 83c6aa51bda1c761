"""WriteBatch over real gRPC: a status per op, request order per key, durable before OK."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.server import CacheServer
from services.common.json_value import from_value, to_value
from tests.cache.harness import make_server

if TYPE_CHECKING:
    Stub = cache_pb2_grpc.CacheServiceAsyncStub

OK = grpc.StatusCode.OK.value[0]
INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def put(key: str, value: Any, ttl: int = 0) -> cache_pb2.WriteOp:
    return cache_pb2.WriteOp(key=key, set=cache_pb2.SetOp(value=to_value(value), ttl_seconds=ttl))


def drop(key: str) -> cache_pb2.WriteOp:
    return cache_pb2.WriteOp(key=key, delete=cache_pb2.DeleteOp())


async def value_of(stub: Stub, key: str) -> Any:
    reply = await stub.Get(cache_pb2.GetRequest(key=key))
    return from_value(reply.value) if reply.found else "<miss>"


async def test_each_bad_op_fails_alone_and_the_rest_are_written(stub: Stub) -> None:
    huge = "x" * (2 * 1024 * 1024)
    reply = await stub.WriteBatch(
        cache_pb2.WriteBatchRequest(
            ops=[
                put("wb:a", 1, 60),
                put("no-prefix", 2),
                put("wb:b", 3, -5),
                put("wb:c", huge),
                cache_pb2.WriteOp(key="wb:d"),
                cache_pb2.WriteOp(key="wb:e", set=cache_pb2.SetOp()),
                put("other:f", {"x": [1]}),
            ]
        )
    )
    codes = [r.code for r in reply.results]
    assert codes == [OK, INVALID, INVALID, EXHAUSTED, INVALID, INVALID, OK]
    assert [r.key for r in reply.results] == [
        "wb:a",
        "no-prefix",
        "wb:b",
        "wb:c",
        "wb:d",
        "wb:e",
        "other:f",
    ]
    assert reply.results[0].ttl_seconds == 60
    assert "ops[1].key" in reply.results[1].message or "prefix" in reply.results[1].message
    assert "ttl" in reply.results[2].message.lower()
    assert "CACHE_MAX_VALUE_BYTES" in reply.results[3].message
    assert "neither set nor delete" in reply.results[4].message
    assert "required" in reply.results[5].message
    assert await value_of(stub, "wb:a") == 1
    assert await value_of(stub, "other:f") == {"x": [1]}
    assert await value_of(stub, "wb:c") == "<miss>"


async def test_ops_on_one_key_apply_in_request_order(stub: Stub) -> None:
    reply = await stub.WriteBatch(
        cache_pb2.WriteBatchRequest(
            ops=[put("ord:k", 1), drop("ord:k"), drop("ord:k"), put("ord:k", 2), put("ord:j", 9)]
        )
    )
    assert [r.code for r in reply.results] == [OK] * 5
    assert [r.deleted for r in reply.results[1:3]] == [True, False]
    assert await value_of(stub, "ord:k") == 2
    reply = await stub.WriteBatch(cache_pb2.WriteBatchRequest(ops=[put("ord:j", 3), drop("ord:j")]))
    assert reply.results[1].deleted
    assert await value_of(stub, "ord:j") == "<miss>"


async def test_acknowledged_writes_are_durable_across_a_restart(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    server = make_server(tmp_path, registry)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = cache_pb2_grpc.CacheServiceStub(channel)
            reply = await stub.WriteBatch(
                cache_pb2.WriteBatchRequest(ops=[put(f"dur:{i}", i) for i in range(50)])
            )
            assert all(r.code == OK for r in reply.results)
    finally:
        await server.stop()
    again = make_server(tmp_path, CollectorRegistry())
    await again.start()
    try:
        async with grpc.aio.insecure_channel(again.address) as channel:
            stub = cache_pb2_grpc.CacheServiceStub(channel)
            assert [await value_of(stub, f"dur:{i}") for i in range(50)] == list(range(50))
    finally:
        await again.stop()


async def test_a_batch_over_the_limit_is_refused_whole(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.WriteBatch(
            cache_pb2.WriteBatchRequest(ops=[put(f"big:{i}", i) for i in range(1001)])
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "CACHE_MAX_BATCH" in (caught.value.details() or "")


async def test_an_empty_batch_answers_nothing(server: CacheServer, stub: Stub) -> None:
    reply = await stub.WriteBatch(cache_pb2.WriteBatchRequest())
    assert list(reply.results) == []
