"""The gateway as a process in front of a real CacheService process."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.gateway.stack import TOKEN, Reply, Stack, gateway_stack, request

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with gateway_stack(tmp_path_factory.mktemp("gw-cache")) as running:
        yield running


def call(stack: Stack, method: str, path: str, body: object = None, **kwargs: object) -> Reply:
    return request(stack.url, method, path, body, **kwargs)  # type: ignore[arg-type]


def test_put_get_delete_round_trip(stack: Stack) -> None:
    value = {"price": 189.5, "volume": 1000, "tags": ["a", None, True], "nested": {"x": [1, 2]}}
    put = call(
        stack,
        "PUT",
        "/api/v1/cache/keys/stock:AAPL",
        {"value": value, "ttlSeconds": 60},
        token=TOKEN,
    )
    assert put.status == 200
    assert put.body == {"key": "stock:AAPL", "ttlSeconds": 60, "position": put.body["position"]}
    assert put.body["position"]["prefix"] == "stock"  # the commit's place in the prefix
    got = call(stack, "GET", "/api/v1/cache/keys/stock:AAPL")
    assert got.status == 200
    assert got.body["found"] is True
    assert got.body["value"] == value  # plain JSON; integers stay integers
    assert 0 < got.body["ttlRemainingSeconds"] <= 60
    deleted = call(stack, "DELETE", "/api/v1/cache/keys/stock:AAPL", token=TOKEN)
    assert deleted.status == 200
    assert (deleted.body["key"], deleted.body["deleted"]) == ("stock:AAPL", True)
    assert deleted.body["position"]["sequence"] > put.body["position"]["sequence"]
    miss = call(stack, "GET", "/api/v1/cache/keys/stock:AAPL")
    assert miss.body == {
        "key": "stock:AAPL",
        "found": False,
        "ttlRemainingSeconds": 0,
        "position": deleted.body["position"],  # read after the delete's commit
    }


def test_percent_encoded_key(stack: Stack) -> None:
    key = "news:AAPL:2025-01-15/evening"
    put = call(
        stack,
        "PUT",
        "/api/v1/cache/keys/news%3AAAPL%3A2025-01-15%2Fevening",
        {"value": "x"},
        token=TOKEN,
    )
    assert (put.status, put.body["key"]) == (200, key)
    got = call(stack, "GET", "/api/v1/cache/keys/news:AAPL:2025-01-15%2Fevening")
    assert (got.body["key"], got.body["value"]) == (key, "x")


def test_mset_then_mget_in_request_order(stack: Stack) -> None:
    items = [
        {"key": "batch:1", "value": 1},
        {"key": "batch:2", "value": {"b": 2}, "ttlSeconds": 120},
    ]
    mset = call(stack, "POST", "/api/v1/cache/mset", {"items": items}, token=TOKEN)
    assert mset.status == 200 and mset.body["written"] == 2
    # One commit position per prefix written (what a writer's near cache needs).
    [position] = mset.body["positions"]
    assert position["prefix"] == "batch" and position["epoch"] >= 1 and position["sequence"] >= 1
    mget = call(stack, "POST", "/api/v1/cache/mget", {"keys": ["batch:2", "batch:none", "batch:1"]})
    assert mget.status == 200
    results = mget.body["results"]
    assert [r["key"] for r in results] == ["batch:2", "batch:none", "batch:1"]
    assert [r["found"] for r in results] == [True, False, True]
    assert results[0]["value"] == {"b": 2} and results[2]["value"] == 1
    assert "value" not in results[1]


def test_clear_prefix_is_admin(stack: Stack) -> None:
    call(stack, "PUT", "/api/v1/cache/keys/tmp:1", {"value": 1}, token=TOKEN)
    refused = call(stack, "DELETE", "/api/v1/cache/prefixes/tmp")
    assert (refused.status, refused.body["code"]) == (401, 16)
    cleared = call(stack, "DELETE", "/api/v1/cache/prefixes/tmp", token=TOKEN)
    assert cleared.status == 200
    assert (cleared.body["prefix"], cleared.body["deleted"]) == ("tmp", 1)
    assert cleared.body["position"]["prefix"] == "tmp"


def test_health_and_metrics_have_the_seed_shape(stack: Stack) -> None:
    call(stack, "GET", "/api/v1/cache/keys/shape:miss")
    health = call(stack, "GET", "/api/v1/cache/health")
    assert health.status == 200
    assert health.body["status"] == "healthy"
    assert health.body["enabled"] is True
    assert isinstance(health.body["hitRate"], float)
    metrics = health.body["metrics"]
    for name in ("hits", "misses", "keys", "memoryBytes"):
        assert isinstance(metrics[name], int), name  # int64 as JSON numbers
    assert metrics["misses"] >= 1
    assert isinstance(metrics["prefixes"], list)
    got = call(stack, "GET", "/api/v1/cache/metrics")
    assert got.status == 200
    assert {"hits", "misses", "hitRate", "keys", "memoryBytes", "metrics"} <= set(got.body)


@pytest.mark.parametrize(
    ("method", "path", "body", "token", "status", "code"),
    [
        ("GET", "/api/v1/cache/keys/no-prefix", None, None, 400, 3),
        ("GET", "/api/v1/cache/keys/has%20space:x", None, None, 400, 3),
        ("PUT", "/api/v1/cache/keys/k:1", {"value": 1, "ttlSeconds": -1}, TOKEN, 400, 3),
        ("PUT", "/api/v1/cache/keys/k:1", {"value": 1}, None, 401, 16),
        ("PUT", "/api/v1/cache/keys/k:1", {"value": 1}, "wrong", 403, 7),
        ("DELETE", "/api/v1/cache/keys/k:1", None, "wrong", 403, 7),
        ("POST", "/api/v1/cache/mset", {"items": []}, None, 401, 16),
        ("GET", "/api/v1/cache/nothing", None, None, 404, 5),
        ("PATCH", "/api/v1/cache/keys/k:1", None, None, 405, 12),
    ],
)
def test_error_codes(  # noqa: PLR0917 - one parameter per table column
    stack: Stack,
    method: str,
    path: str,
    body: object,
    token: str | None,
    status: int,
    code: int,
) -> None:
    reply = call(stack, method, path, body, token=token)
    assert (reply.status, reply.body["code"]) == (status, code), reply.body
    assert reply.body["message"]
    assert isinstance(reply.body["details"], list)


def test_bad_key_carries_the_field_violation(stack: Stack) -> None:
    reply = call(stack, "GET", "/api/v1/cache/keys/no-prefix")
    assert reply.body["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert reply.body["details"][0]["fieldViolations"][0]["field"] == "key"
    assert "prefix" in reply.body["message"]


def test_405_lists_allowed_methods(stack: Stack) -> None:
    reply = call(stack, "POST", "/api/v1/cache/keys/k:1")
    assert (reply.status, reply.headers["Allow"]) == (405, "DELETE, GET, HEAD, PUT")


def test_oversized_value_is_429_and_oversized_body_is_413(stack: Stack) -> None:
    value = "x" * (1024 * 1024 + 16)  # over the cache's 1 MiB value limit, under the body limit
    reply = call(stack, "PUT", "/api/v1/cache/keys/big:1", {"value": value}, token=TOKEN)
    assert (reply.status, reply.body["code"]) == (429, 8)
    assert "1048576" in reply.body["message"]
    huge = b'{"value": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    reply = call(stack, "PUT", "/api/v1/cache/keys/big:1", raw=huge, token=TOKEN)
    assert (reply.status, reply.body["code"]) == (413, 8)


def test_grpc_timeout_is_honoured(stack: Stack) -> None:
    # A paused cache cannot answer, so the deadline from the header is what ends the call.
    cache = stack.backends["cache"].popen
    cache.send_signal(signal.SIGSTOP)
    try:
        reply = call(stack, "GET", "/api/v1/cache/health", headers={"Grpc-Timeout": "200m"})
    finally:
        cache.send_signal(signal.SIGCONT)
    assert (reply.status, reply.body["code"]) == (504, 4)
    assert "Grpc-Timeout" in reply.body["message"]
    reply = call(stack, "GET", "/api/v1/cache/health", headers={"Grpc-Timeout": "20S"})
    assert reply.status == 200


def test_a_backend_that_is_down_is_503(stack: Stack) -> None:
    reply = call(stack, "GET", "/api/v1/sectors/XLK")
    assert (reply.status, reply.body["code"]) == (503, 14)
    assert "marketcache.v1.SectorService" in reply.body["message"]


def test_readyz_names_the_down_backends(stack: Stack) -> None:
    reply = call(stack, "GET", "/readyz")
    assert reply.status == 503
    assert reply.body["backends"]["marketcache.v1.CacheService"]["status"] == "SERVING"
    assert "MarketDataService" in reply.body["message"]
    assert "SectorService" in reply.body["message"]
    assert "CacheService" not in reply.body["message"]


def test_gateway_metrics_endpoint(stack: Stack) -> None:
    call(stack, "GET", "/api/v1/cache/keys/metric:probe")
    reply = call(stack, "GET", "/metrics")
    assert reply.status == 200
    text = reply.body
    assert (
        'gateway_http_requests_total{code="200",method="GET",route="/api/v1/cache/keys/{key}"}'
        in text
    )
    assert (
        'gateway_http_request_seconds_bucket{le="0.005",method="GET",route="/api/v1/cache/keys/{key}"}'
        in text
    )
    assert "process_resident_memory_bytes" in text
    assert "metric:probe" not in text


def test_sigterm_stops_the_gateway_gracefully(tmp_path_factory: pytest.TempPathFactory) -> None:
    with gateway_stack(tmp_path_factory.mktemp("gw-term")) as running:
        assert request(running.url, "GET", "/healthz").status == 200
        assert running.gateway.terminate() == 0
        assert "gateway stopped" in running.gateway.log()
