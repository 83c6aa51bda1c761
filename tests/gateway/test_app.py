"""The gateway over HTTP in front of a real gRPC server scripted by the test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from yarl import URL

from services.gateway.config import BACKEND_VARS
from services.gateway.errors import HTTP_STATUS
from services.gateway.server import GatewayServer
from tests.gateway.conftest import TOKEN, StartGateway
from tests.gateway.scripted_backend import SERVICE, ScriptedCache, scripted_backend

CACHE = "marketcache.v1.CacheService"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def backend() -> AsyncIterator[tuple[str, ScriptedCache]]:
    async with scripted_backend() as found:
        yield found


@pytest.fixture
async def gateway(start_gateway: StartGateway, backend: tuple[str, ScriptedCache]) -> GatewayServer:
    return await start_gateway({CACHE: backend[0]})


async def _call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    **kwargs: Any,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.request(method, URL(url, encoded=True), **kwargs) as response:
        text = await response.text()
        body = json.loads(text) if response.content_type == "application/json" else text
        return response.status, body, response


async def test_get_transcodes_path_and_reply(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    status, body, response = await _call(
        http, "GET", f"{gateway.url}/api/v1/cache/keys/stock%3AA%2FB"
    )
    assert status == 200
    assert response.content_type == "application/json"
    assert body["key"] == "stock:A/B"
    assert body["found"] is True
    assert body["ttlRemainingSeconds"] == 42
    assert body["value"]["metadata"]  # plain JSON, not a Value wrapper


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK])
async def test_every_grpc_code_maps_by_the_table(
    gateway: GatewayServer, http: aiohttp.ClientSession, code: grpc.StatusCode
) -> None:
    status, body, _ = await _call(http, "GET", f"{gateway.url}/api/v1/cache/keys/code:{code.name}")
    assert status == HTTP_STATUS[code]
    assert body["code"] == code.value[0]
    assert isinstance(body["details"], list)
    if code is not grpc.StatusCode.INVALID_ARGUMENT:
        assert body["message"] == f"scripted {code.name}"


def test_status_table_is_grpc_gateways() -> None:
    expected = {
        "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
        "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
        "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499,
        "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
        "UNKNOWN": 500, "INTERNAL": 500, "DATA_LOSS": 500,
    }  # fmt: skip
    assert {c.name: s for c, s in HTTP_STATUS.items() if c is not grpc.StatusCode.OK} == expected


async def test_rich_details_are_carried_as_protojson(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await _call(
        http, "GET", f"{gateway.url}/api/v1/cache/keys/code:INVALID_ARGUMENT"
    )
    assert status == 400
    assert body == {
        "code": 3,
        "message": "bad key for the test",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": "key", "description": "bad key for the test", "reason": ""}
                ],
            }
        ],
    }
    status, body, _ = await _call(http, "GET", f"{gateway.url}/api/v1/cache/keys/plain:ABORTED")
    assert (status, body) == (409, {"code": 10, "message": "plain ABORTED", "details": []})


async def test_unimplemented_rpc_is_501(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await _call(http, "GET", f"{gateway.url}/api/v1/cache/health")
    assert (status, body["code"]) == (501, 12)


async def test_authorization_and_grpc_metadata_headers_are_forwarded(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": "Bearer abc", "Grpc-Metadata-X-Trace-Id": "t-1", "X-Other": "no"}
    _, body, _ = await _call(http, "GET", f"{gateway.url}/api/v1/cache/keys/a:b", headers=headers)
    metadata = body["value"]["metadata"]
    assert metadata["authorization"] == "Bearer abc"
    assert metadata["x-trace-id"] == "t-1"
    assert "x-other" not in metadata


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Grpc-Metadata-Foo": "caf\u00e9"}, "printable ASCII"),
        ({"Grpc-Metadata-Grpc-Status": "0"}, "reserved"),
        ({"Grpc-Metadata-Content-Type": "text/plain"}, "reserved"),
        ({"Grpc-Metadata-Foo-Bin": "AAAA"}, "binary"),
        ({"Grpc-Timeout": "5 seconds"}, "Grpc-Timeout"),
        ({"Grpc-Timeout": "123456789S"}, "Grpc-Timeout"),
    ],
)
async def test_bad_headers_are_400(
    gateway: GatewayServer, http: aiohttp.ClientSession, headers: dict[str, str], fragment: str
) -> None:
    status, body, _ = await _call(
        http, "GET", f"{gateway.url}/api/v1/cache/keys/a:b", headers=headers
    )
    assert status == 400
    assert body["code"] == 3 and fragment in body["message"]


@pytest.mark.parametrize(
    "header_line",
    [
        b"Grpc-Metadata-A: b\rc",
        b"Grpc-Metadata-A: caf\xc3\xa9",
        b"Authorization: \xff\xfe",
        b"X: \x00",
    ],
)
async def test_header_injection_never_crashes_the_gateway(
    gateway: GatewayServer, http: aiohttp.ClientSession, header_line: bytes
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(
        b"GET /api/v1/cache/keys/a:b HTTP/1.1\r\nHost: x\r\n" + header_line + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()
    reply = await reader.read()
    writer.close()
    status_line = reply.split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"400", reply[:300]
    # And the gateway still answers.
    status, _, _ = await _call(http, "GET", f"{gateway.url}/api/v1/cache/keys/a:b")
    assert status == 200


async def test_grpc_timeout_header_is_the_deadline(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    headers = {"Grpc-Timeout": "50m"}
    status, body, _ = await _call(
        http, "GET", f"{gateway.url}/api/v1/cache/keys/slow:x", headers=headers
    )
    assert status == 504
    assert body["code"] == 4
    assert "deadline" in body["message"]


async def test_default_timeout_applies_without_the_header(
    start_gateway: StartGateway, backend: tuple[str, ScriptedCache], http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway({CACHE: backend[0]}, default_timeout=0.05)
    status, body, _ = await _call(http, "GET", f"{gateway.url}/api/v1/cache/keys/slow:x")
    assert (status, body["code"]) == (504, 4)


async def test_unknown_path_is_404_json(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    for path in ("/api/v1/nope", "/api/v1/cache/keys/", "/nope", "/static/nope.js"):
        status, body, _ = await _call(http, "GET", f"{gateway.url}{path}")
        assert status == 404, path
        assert body["code"] == 5 and "openapi.json" in body["message"]


async def test_wrong_method_is_405_with_allow(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    status, body, response = await _call(http, "POST", f"{gateway.url}/api/v1/cache/keys/a:b")
    assert status == 405
    assert response.headers["Allow"] == "DELETE, GET, HEAD, PUT"
    assert body["code"] == 12
    status, _, response = await _call(http, "POST", f"{gateway.url}/healthz")
    assert (status, response.headers["Allow"]) == (405, "GET, HEAD")


async def test_body_too_large_is_413(
    start_gateway: StartGateway, backend: tuple[str, ScriptedCache], http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway({CACHE: backend[0]}, max_body_bytes=2048)
    big = json.dumps({"value": "x" * 4096}).encode()
    url = f"{gateway.url}/api/v1/cache/keys/a:b"
    status, body, _ = await _call(http, "PUT", url, data=big, headers=AUTH)
    assert (status, body["code"]) == (413, 8)
    assert "GATEWAY_MAX_BODY_BYTES" in body["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit still holds
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    status, body, _ = await _call(http, "PUT", url, data=chunks(), headers=AUTH)
    assert (status, body["code"]) == (413, 8)
    assert backend[1].seen == []
    small = json.dumps({"value": "x" * 1000}).encode()
    status, _, _ = await _call(http, "PUT", url, data=small, headers=AUTH)
    assert status == 200


async def test_admin_routes_need_the_token(
    gateway: GatewayServer, backend: tuple[str, ScriptedCache], http: aiohttp.ClientSession
) -> None:
    url = f"{gateway.url}/api/v1/cache/keys/stock:AAPL"
    payload = {"value": {"price": 1}, "ttlSeconds": 60}
    status, body, _ = await _call(http, "PUT", url, json=payload)
    assert (status, body["code"]) == (401, 16)
    assert "Bearer" in body["message"]
    wrong = {"Authorization": "Bearer nope"}
    status, body, _ = await _call(http, "PUT", url, json=payload, headers=wrong)
    assert (status, body["code"]) == (403, 7)
    assert backend[1].seen == []  # refused at the gateway, never sent on
    status, body, _ = await _call(http, "PUT", url, json=payload, headers=AUTH)
    assert (status, body) == (200, {"key": "stock:AAPL", "ttlSeconds": 60})
    # MGet is a read that happens to use POST: no token needed.
    status, body, _ = await _call(
        http, "POST", f"{gateway.url}/api/v1/cache/mget", json={"keys": ["a:b"]}
    )
    assert status == 200
    assert body == {"results": [{"key": "a:b", "found": False, "ttlRemainingSeconds": 0}]}


async def test_admin_routes_are_refused_without_a_configured_token(
    start_gateway: StartGateway, backend: tuple[str, ScriptedCache], http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway({CACHE: backend[0]}, admin_token=None)
    url = f"{gateway.url}/api/v1/cache/keys/stock:AAPL"
    status, body, _ = await _call(http, "PUT", url, json={"value": 1}, headers=AUTH)
    assert (status, body["code"]) == (403, 7)
    assert "ADMIN_TOKEN" in body["message"]


async def test_bad_input_over_http_is_400(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    url = f"{gateway.url}/api/v1/cache/keys/a:b"
    status, body, _ = await _call(http, "PUT", url, data=b"{oops", headers=AUTH)
    assert (status, body["code"]) == (400, 3) and "not valid JSON" in body["message"]
    status, body, _ = await _call(http, "PUT", url, json={"ttlSeconds": "x"}, headers=AUTH)
    assert (status, body["code"]) == (400, 3) and "ttlSeconds" in body["message"]
    status, body, _ = await _call(http, "GET", url + "?verbose=1")
    assert status == 400 and "unknown query parameter 'verbose'" in body["message"]
    assert body["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    status, body, _ = await _call(http, "GET", f"{gateway.url}/api/v1/cache/keys/%FF")
    assert status == 400 and "UTF-8" in body["message"]


async def test_backend_down_is_503_naming_it(
    start_gateway: StartGateway, http: aiohttp.ClientSession, dead_address: str
) -> None:
    gateway = await start_gateway()
    status, body, _ = await _call(http, "GET", f"{gateway.url}/api/v1/market/quotes/AAPL")
    assert (status, body["code"]) == (503, 14)
    assert f"marketcache.v1.MarketDataService at {dead_address}" in body["message"]


async def test_readyz_names_the_backends_that_are_down(
    gateway: GatewayServer, http: aiohttp.ClientSession, dead_address: str
) -> None:
    status, body, _ = await _call(http, "GET", f"{gateway.url}/readyz")
    assert status == 503
    assert body["ready"] is False
    assert body["backends"][CACHE]["status"] == "SERVING"
    assert "marketcache.v1.MarketDataService" in body["message"]
    assert "marketcache.v1.SectorService" in body["message"]
    assert CACHE not in body["message"]
    assert body["backends"]["marketcache.v1.SectorService"]["address"] == dead_address


async def test_readyz_is_200_when_every_backend_serves_and_503_when_one_does_not(
    start_gateway: StartGateway, http: aiohttp.ClientSession
) -> None:
    names = tuple(BACKEND_VARS)
    async with scripted_backend(health_names=names) as (address, _):
        gateway = await start_gateway(dict.fromkeys(names, address))
        status, body, _ = await _call(http, "GET", f"{gateway.url}/readyz")
        assert (status, body["ready"]) == (200, True)
    async with scripted_backend(serving=False, health_names=names) as (address, _):
        gateway = await start_gateway(dict.fromkeys(names, address))
        status, body, _ = await _call(http, "GET", f"{gateway.url}/readyz")
        assert status == 503
        assert body["backends"][SERVICE]["status"] == "NOT_SERVING"


async def test_healthz_and_openapi(gateway: GatewayServer, http: aiohttp.ClientSession) -> None:
    status, text, _ = await _call(http, "GET", f"{gateway.url}/healthz")
    assert (status, text) == (200, "ok\n")
    status, doc, _ = await _call(http, "GET", f"{gateway.url}/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert "/api/v1/cache/keys/{key}" in doc["paths"]


async def test_metrics_label_by_route_template_never_raw_path(
    gateway: GatewayServer, http: aiohttp.ClientSession
) -> None:
    await _call(http, "GET", f"{gateway.url}/api/v1/cache/keys/secret:key")
    await _call(http, "GET", f"{gateway.url}/api/v1/cache/keys/code:NOT_FOUND")
    await _call(http, "GET", f"{gateway.url}/no/such/secret")
    status, text, _ = await _call(http, "GET", f"{gateway.url}/metrics")
    assert status == 200
    route = 'route="/api/v1/cache/keys/{key}"'
    assert f'gateway_http_requests_total{{code="200",method="GET",{route}}} 1.0' in text
    assert f'gateway_http_requests_total{{code="404",method="GET",{route}}} 1.0' in text
    assert 'gateway_http_requests_total{code="404",method="GET",route="(unmatched)"} 1.0' in text
    assert f'gateway_http_request_seconds_count{{method="GET",{route}}} 2.0' in text
    # Every route's latency series exists from the start.
    assert (
        'gateway_http_request_seconds_count{method="DELETE",route="/api/v1/sectors/cache"} 0.0'
        in text
    )
    assert "process_cpu_seconds_total" in text or "python_info" in text
    assert "secret" not in text
