"""The CacheService over real gRPC on 127.0.0.1:0: inputs, status codes, gates, auth, batches."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.server import CacheServer
from services.common.errors import status_details
from services.common.json_value import from_value, to_value
from tests.cache.harness import ADMIN_TOKEN, cache_env, cache_stub, make_server

if TYPE_CHECKING:
    Stub = cache_pb2_grpc.CacheServiceAsyncStub
ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


async def fails(call: Any, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() is code, caught.value.details()
    return caught.value


def field_of(error: grpc.aio.AioRpcError) -> str:
    for detail in status_details(error):
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return str(bad.field_violations[0].field)
    raise AssertionError(f"no BadRequest detail in {str(error.details())!r}")


async def get(stub: Stub, key: str) -> Any:
    reply = await stub.Get(cache_pb2.GetRequest(key=key))
    return from_value(reply.value) if reply.found else "<miss>"


async def put(stub: Stub, key: str, value: Any, ttl: int = 0) -> cache_pb2.SetResponse:
    return await stub.Set(cache_pb2.SetRequest(key=key, value=to_value(value), ttl_seconds=ttl))


async def test_json_values_round_trip_as_json(stub: Stub) -> None:
    values: list[Any] = [
        {"symbol": "AAPL", "price": 189.5, "volume": 1000, "tags": ["a", None, True]},
        [1, 2.5, "x"],
        "text",
        0,
        False,
        None,
    ]
    for i, value in enumerate(values):
        reply = await put(stub, f"stock:{i}", value, 120)
        assert (reply.key, reply.ttl_seconds) == (f"stock:{i}", 120)
    for i, value in enumerate(values):
        got = await stub.Get(cache_pb2.GetRequest(key=f"stock:{i}"))
        assert got.found
        assert from_value(got.value) == value
        assert 0 < got.ttl_remaining_seconds <= 120
    miss = await stub.Get(cache_pb2.GetRequest(key="stock:none"))
    assert (miss.found, miss.HasField("value"), miss.ttl_remaining_seconds) == (False, False, 0)


BAD_INPUTS = [
    ("Get", cache_pb2.GetRequest(key="AAPL"), grpc.StatusCode.INVALID_ARGUMENT, "key"),
    ("Get", cache_pb2.GetRequest(key="stock:A B"), grpc.StatusCode.INVALID_ARGUMENT, "key"),
    ("Get", cache_pb2.GetRequest(key="stock:\x01"), grpc.StatusCode.INVALID_ARGUMENT, "key"),
    ("Get", cache_pb2.GetRequest(key="stock:"), grpc.StatusCode.INVALID_ARGUMENT, "key"),
    ("Get", cache_pb2.GetRequest(key="s:" + "x" * 300), grpc.StatusCode.INVALID_ARGUMENT, "key"),
    ("Delete", cache_pb2.DeleteRequest(key=":x"), grpc.StatusCode.INVALID_ARGUMENT, "key"),
    (
        "Set",
        cache_pb2.SetRequest(key="stock:A", value=to_value(1), ttl_seconds=-1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ttl_seconds",
    ),
    (
        "Set",
        cache_pb2.SetRequest(key="stock:A", value=to_value(1), ttl_seconds=31 * 86_400),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ttl_seconds",
    ),
    ("Set", cache_pb2.SetRequest(key="stock:A"), grpc.StatusCode.INVALID_ARGUMENT, "value"),
    (
        "Set",
        cache_pb2.SetRequest(key="stock:A", value=struct_pb2.Value()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "value",
    ),
    (
        "MGet",
        cache_pb2.MGetRequest(keys=["stock:A", "nope"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "keys[1]",
    ),
    (
        "MGet",
        cache_pb2.MGetRequest(keys=[f"stock:{i}" for i in range(1001)]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "keys",
    ),
    (
        "MSet",
        cache_pb2.MSetRequest(
            items=[cache_pb2.MSetItem(key=f"stock:{i}", value=to_value(i)) for i in range(1001)]
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "items",
    ),
    (
        "MSet",
        cache_pb2.MSetRequest(
            items=[
                cache_pb2.MSetItem(key="stock:A", value=to_value(1)),
                cache_pb2.MSetItem(key="s:b"),
            ]
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "items[1].value",
    ),
    ("Clear", cache_pb2.ClearRequest(prefix="a b"), grpc.StatusCode.INVALID_ARGUMENT, "prefix"),
    (
        "GetOwnership",
        cache_pb2.GetOwnershipRequest(prefix=""),
        grpc.StatusCode.INVALID_ARGUMENT,
        "prefix",
    ),
]


@pytest.mark.parametrize(
    ("method", "request_", "code", "field"),
    BAD_INPUTS,
    ids=[f"{m}-{f}-{i}" for i, (m, _, _, f) in enumerate(BAD_INPUTS)],
)
async def test_bad_input_gets_its_status_and_field_and_the_server_stays_correct(
    stub: Stub, method: str, request_: Any, code: grpc.StatusCode, field: str
) -> None:
    await put(stub, "stock:KEEP", "kept")
    error = await fails(getattr(stub, method)(request_, metadata=ADMIN), code)
    assert field_of(error) == field
    assert error.details()  # a message a person can act on
    assert await get(stub, "stock:KEEP") == "kept"
    assert await get(stub, "stock:A") == "<miss>"  # nothing half-written
    health = await stub.Health(cache_pb2.HealthRequest())
    assert health.status == "healthy", health.reason


async def test_error_messages_show_the_expected_form_and_limits(stub: Stub) -> None:
    error = await fails(
        stub.Get(cache_pb2.GetRequest(key="AAPL")), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert str(error.details()) == (
        "key 'AAPL' has no prefix: expected '<prefix>:<rest>', e.g. 'stock:AAPL'"
    )
    big = to_value("x" * (1024 * 1024))
    error = await fails(
        stub.Set(cache_pb2.SetRequest(key="stock:big", value=big)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert "the limit is 1048576 bytes (CACHE_MAX_VALUE_BYTES)" in str(error.details())
    assert f"is {len(big.SerializeToString())} bytes" in str(error.details())
    error = await fails(
        stub.MGet(cache_pb2.MGetRequest(keys=["a:b"] * 1001)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "the limit is 1000 per call (CACHE_MAX_BATCH)" in str(error.details())


async def test_mget_answers_in_request_order_with_duplicates_and_misses(stub: Stub) -> None:
    await stub.MSet(
        cache_pb2.MSetRequest(
            items=[
                cache_pb2.MSetItem(key="stock:A", value=to_value("a")),
                cache_pb2.MSetItem(key="news:B", value=to_value("b"), ttl_seconds=60),
            ]
        )
    )
    keys = ["news:B", "stock:none", "stock:A", "news:B", "other:x"]
    reply = await stub.MGet(cache_pb2.MGetRequest(keys=keys))
    assert [r.key for r in reply.results] == keys
    assert [from_value(r.value) if r.found else None for r in reply.results] == [
        "b",
        None,
        "a",
        "b",
        None,
    ]
    assert reply.results[0].ttl_remaining_seconds <= 60


async def test_mset_with_a_bad_item_writes_none_of_them(stub: Stub) -> None:
    items = [
        cache_pb2.MSetItem(key="stock:1", value=to_value(1)),
        cache_pb2.MSetItem(key="stock:2", value=to_value(2), ttl_seconds=-3),
        cache_pb2.MSetItem(key="stock:3", value=to_value(3)),
    ]
    error = await fails(
        stub.MSet(cache_pb2.MSetRequest(items=items)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert field_of(error) == "items[1].ttl_seconds"
    reply = await stub.MGet(cache_pb2.MGetRequest(keys=["stock:1", "stock:2", "stock:3"]))
    assert [r.found for r in reply.results] == [False, False, False]
    del items[1]
    assert (await stub.MSet(cache_pb2.MSetRequest(items=items))).written == 2


async def test_delete_reports_whether_a_live_entry_existed(stub: Stub) -> None:
    await put(stub, "stock:A", 1)
    assert (await stub.Delete(cache_pb2.DeleteRequest(key="stock:A"))).deleted is True
    assert (await stub.Delete(cache_pb2.DeleteRequest(key="stock:A"))).deleted is False
    assert await get(stub, "stock:A") == "<miss>"


async def test_clear_needs_the_admin_token(stub: Stub) -> None:
    await put(stub, "news:1", 1)
    await put(stub, "news:2", 2)
    await put(stub, "stock:1", 3)
    request = cache_pb2.ClearRequest(prefix="news")
    error = await fails(stub.Clear(request), grpc.StatusCode.UNAUTHENTICATED)
    assert "authorization: Bearer <ADMIN_TOKEN>" in str(error.details())
    await fails(
        stub.Clear(request, metadata=(("authorization", "Bearer wrong"),)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert await get(stub, "news:1") == 1
    reply = await stub.Clear(request, metadata=ADMIN)
    assert (reply.prefix, reply.deleted) == ("news", 2)
    assert await get(stub, "news:1") == "<miss>"
    assert await get(stub, "stock:1") == 3


async def test_clear_is_refused_when_no_admin_token_is_configured(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    env = cache_env(tmp_path)
    del env["ADMIN_TOKEN"]
    server = make_server(tmp_path, registry, env)
    await server.start()
    try:
        async with cache_stub(server.address) as stub:
            error = await fails(
                stub.Clear(cache_pb2.ClearRequest(prefix="news"), metadata=ADMIN),
                grpc.StatusCode.PERMISSION_DENIED,
            )
            assert "set ADMIN_TOKEN" in str(error.details())
            await put(stub, "news:1", 1)  # ordinary writes need no token
    finally:
        await server.stop()


async def test_ownership_of_a_lone_node(server: CacheServer, stub: Stub) -> None:
    # Alone, the node is every prefix's owner; a prefix's lease is taken on first use.
    ask = cache_pb2.GetOwnershipRequest(prefix="stock")
    before = (await stub.GetOwnership(ask)).owner
    assert (before.node_id, before.address, before.epoch) == ("node-a", server.address, 0)
    await put(stub, "stock:AAPL", 1)
    for asked in ("stock", "stock:AAPL:2025"):
        owner = (await stub.GetOwnership(cache_pb2.GetOwnershipRequest(prefix=asked))).owner
        assert (owner.prefix, owner.node_id, owner.address, owner.epoch) == (
            "stock",
            "node-a",
            server.address,
            1,
        )
        assert owner.expires_at > time.time()
    listed = await stub.ListOwners(cache_pb2.ListOwnersRequest())
    assert [(m.node_id, m.address, m.alive) for m in listed.members] == [
        ("node-a", server.address, True)
    ]
    assert [(o.prefix, o.node_id, o.epoch) for o in listed.owners] == [("stock", "node-a", 1)]


async def test_health_rpc_and_grpc_health(server: CacheServer, stub: Stub) -> None:
    reply = await stub.Health(cache_pb2.HealthRequest())
    assert (reply.status, reply.enabled, reply.node_id, reply.reason) == (
        "healthy",
        True,
        "node-a",
        "",
    )
    async with grpc.aio.insecure_channel(server.address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        for service in ("", "marketcache.v1.CacheService"):
            answer = await check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_disabled_cache_says_so_and_refuses_data_calls(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    server = make_server(tmp_path, registry, cache_env(tmp_path, CACHE_ENABLED="false"))
    await server.start()
    try:
        async with cache_stub(server.address) as stub:
            reply = await stub.Health(cache_pb2.HealthRequest())
            assert (reply.status, reply.enabled) == ("unavailable", False)
            assert "CACHE_ENABLED=false" in reply.reason
            error = await fails(
                stub.Get(cache_pb2.GetRequest(key="stock:A")), grpc.StatusCode.UNAVAILABLE
            )
            assert "CACHE_ENABLED=false" in str(error.details())
    finally:
        await server.stop()
