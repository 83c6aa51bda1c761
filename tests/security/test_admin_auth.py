"""Admin tokens on every admin RPC and route: none, wrong and right; refused when unconfigured.

Tokens are compared in constant time: the code is read (hmac.compare_digest in
services/common/auth.py, no other comparison of an admin token anywhere) and
the behaviour asserted for every admin operation over gRPC and REST.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from marketcache.v1 import cache_pb2, cache_pb2_grpc, sector_pb2, sector_pb2_grpc
from services.gateway.routes import api_services, build_routes
from tests.gateway.stack import TOKEN, Stack, gateway_stack, refusing_address, request
from tests.reliability.records import record
from tests.support.processes import REPO, ServiceProcess, running, running_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

C = grpc.StatusCode
CREDENTIALS = {
    "none": None,
    "wrong": "Bearer not-the-admin-token",
    "prefix of the token": f"Bearer {TOKEN[:-1]}",
    "token plus a character": f"Bearer {TOKEN}x",
    "wrong scheme": f"Basic {TOKEN}",
    "right": f"Bearer {TOKEN}",
    "right, lower-case scheme": f"bearer {TOKEN}",
}
# What each credential gets from a server that has ADMIN_TOKEN set.
EXPECTED_GRPC = {
    "none": C.UNAUTHENTICATED,
    "wrong": C.PERMISSION_DENIED,
    "prefix of the token": C.PERMISSION_DENIED,
    "token plus a character": C.PERMISSION_DENIED,
    "wrong scheme": C.UNAUTHENTICATED,
    "right": C.OK,
    "right, lower-case scheme": C.OK,
}
HTTP_OF = {C.OK: 200, C.UNAUTHENTICATED: 401, C.PERMISSION_DENIED: 403}

Metadata = tuple[tuple[str, str], ...]
GrpcCall = Callable[[grpc.Channel, Metadata], object]


def _clear(channel: grpc.Channel, metadata: Metadata) -> object:
    request = cache_pb2.ClearRequest(prefix="auth")
    return cache_pb2_grpc.CacheServiceStub(channel).Clear(request, metadata=metadata, timeout=30)


def _export(channel: grpc.Channel, metadata: Metadata) -> object:
    request = cache_pb2.ExportRequest(prefix="auth")
    stub = cache_pb2_grpc.CacheServiceStub(channel)
    return list(stub.Export(request, metadata=metadata, timeout=30))


def _import(channel: grpc.Channel, metadata: Metadata) -> object:
    entry = cache_pb2.ExportEntry(key="auth:i", value=struct_pb2.Value(number_value=1))
    chunk = cache_pb2.ImportRequest(entries=[entry])
    stub = cache_pb2_grpc.CacheServiceStub(channel)
    return stub.Import(iter([chunk]), metadata=metadata, timeout=30)


def _sector(method: str, message: Any) -> GrpcCall:
    def call(channel: grpc.Channel, metadata: Metadata) -> object:
        stub = sector_pb2_grpc.SectorServiceStub(channel)
        return getattr(stub, method)(message, metadata=metadata, timeout=30)

    return call


BATCH = sector_pb2.SetBatchSectorDataRequest(sectors=[sector_pb2.SectorData(symbol="XLK", price=9)])
GRPC_ADMIN: dict[str, tuple[str, GrpcCall]] = {
    "CacheService.Clear": ("cache", _clear),
    "CacheService.Export": ("cache", _export),
    "CacheService.Import": ("cache", _import),
    "SectorService.ClearAllCaches": (
        "sector",
        _sector("ClearAllCaches", sector_pb2.ClearAllCachesRequest()),
    ),
    "SectorService.WarmCache": (
        "sector",
        _sector("WarmCache", sector_pb2.WarmCacheRequest(symbols=["XLK"])),
    ),
    "SectorService.SetBatchSectorData": ("sector", _sector("SetBatchSectorData", BATCH)),
}
REST_ADMIN: dict[str, tuple[str, str, Any]] = {
    "CacheService.Set": ("PUT", "/api/v1/cache/keys/auth:k", {"value": 1}),
    "CacheService.Delete": ("DELETE", "/api/v1/cache/keys/auth:k", None),
    "CacheService.MSet": ("POST", "/api/v1/cache/mset", {"items": [{"key": "auth:m", "value": 1}]}),
    "CacheService.Clear": ("DELETE", "/api/v1/cache/prefixes/auth", None),
    "CacheService.WriteBatch": (
        "POST",
        "/api/v1/cache/batch",
        {"ops": [{"key": "auth:b", "set": {"value": 1}}]},
    ),
    "SectorService.WarmCache": ("POST", "/api/v1/sectors/cache/warm", {"symbols": ["XLK"]}),
    "SectorService.ClearAllCaches": ("DELETE", "/api/v1/sectors/cache", None),
    "SectorService.SetBatchSectorData": (
        "POST",
        "/api/v1/sectors/batch",
        {"sectors": [{"symbol": "XLK", "price": 9}]},
    ),
}
# Streaming RPCs served beside the route table (services/gateway/transfer.py).
REST_STREAMING_ADMIN: dict[str, tuple[str, str, Any]] = {
    "CacheService.Export": ("GET", "/api/v1/cache/export?prefix=auth", None),
    "CacheService.Import": ("POST", "/api/v1/cache/import", {"key": "auth:i", "value": 1}),
}


def _code(call: GrpcCall, address: str, credential: str | None) -> grpc.StatusCode:
    metadata: Metadata = () if credential is None else (("authorization", credential),)
    with grpc.insecure_channel(address) as channel:
        try:
            call(channel, metadata)
        except grpc.RpcError as exc:
            return exc.code()
    return C.OK


@dataclass
class Servers:
    stack: Stack
    # The same services with no ADMIN_TOKEN: admin operations are disabled.
    cache_without: ServiceProcess
    sector_without: ServiceProcess
    gateway_without: ServiceProcess


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    work = tmp_path_factory.mktemp("auth")
    with gateway_stack(work / "with", market_data=True, sector=True) as stack:
        base = {"CACHE_METRICS_LISTEN": "127.0.0.1:0", "CACHE_LISTEN": "127.0.0.1:0"}
        cache_env = {**base, "CACHE_DB_URL": f"sqlite:///{work / 'without.db'}"}
        with (
            running("cache", cache_env, work / "cache-without") as cache,
            refusing_address() as nowhere,
            running(
                "sector",
                {
                    "SECTOR_LISTEN": "127.0.0.1:0",
                    "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
                    "CACHE_ADDR": cache.grpc_address,
                    "MARKET_DATA_ADDR": nowhere,
                },
                work / "sector-without",
            ) as sector,
            running_http(
                "gateway",
                {
                    "GATEWAY_LISTEN": "127.0.0.1:0",
                    "CACHE_ADDR": stack.backends["cache"].grpc_address,
                    "MARKET_DATA_ADDR": stack.backends["market_data"].grpc_address,
                    "SECTOR_ADDR": stack.backends["sector"].grpc_address,
                },
                work / "gateway-without",
            ) as gateway,
        ):
            yield Servers(stack, cache, sector, gateway)


def test_every_admin_rpc_checks_the_token(servers: Servers) -> None:
    results: dict[str, dict[str, str]] = {}
    wrong: list[str] = []
    addresses = {
        "cache": servers.stack.backends["cache"].grpc_address,
        "sector": servers.stack.backends["sector"].grpc_address,
    }
    disabled = {
        "cache": servers.cache_without.grpc_address,
        "sector": servers.sector_without.grpc_address,
    }
    for rpc, (service, call) in GRPC_ADMIN.items():
        for label, credential in CREDENTIALS.items():
            got = _code(call, addresses[service], credential)
            results.setdefault(rpc, {})[label] = got.name
            if got is not EXPECTED_GRPC[label]:
                wrong.append(
                    f"{rpc} with {label}: {got.name}, expected {EXPECTED_GRPC[label].name}"
                )
            off = _code(call, disabled[service], credential)
            if off is not C.PERMISSION_DENIED:
                wrong.append(f"{rpc} with {label} and no ADMIN_TOKEN on the server: {off.name}")
    _record("gRPC", len(GRPC_ADMIN), results, wrong)
    assert not wrong, "\n".join(wrong)


def test_every_admin_route_checks_the_token(servers: Servers) -> None:
    admin_routes = {
        r.rpc.full_name.removeprefix("marketcache.v1.")
        for r in build_routes(api_services())
        if r.admin
    }
    # Every admin route of the route table is covered here, and nothing else is admin.
    assert set(REST_ADMIN) == admin_routes
    results: dict[str, dict[str, int]] = {}
    wrong: list[str] = []
    url, url_without = servers.stack.url, servers.gateway_without.http_url
    for rpc, (method, path, body) in {**REST_ADMIN, **REST_STREAMING_ADMIN}.items():
        for label, credential in CREDENTIALS.items():
            headers = {} if credential is None else {"Authorization": credential}
            reply = request(url, method, path, body, headers=headers)
            results.setdefault(rpc, {})[label] = reply.status
            expected = HTTP_OF[EXPECTED_GRPC[label]]
            if reply.status != expected:
                wrong.append(f"{method} {path} with {label}: {reply.status} {reply.body}")
            off = request(url_without, method, path, body, headers=headers)
            if off.status != 403:
                wrong.append(f"{method} {path} with {label}, no ADMIN_TOKEN: {off.status}")
    # Reads need no token.
    for path in (
        "/api/v1/cache/keys/auth:k",
        "/api/v1/sectors/XLK",
        "/api/v1/cache/health",
        "/api/v1/cache/prefixes/auth/keys",
    ):
        reply = request(url, "GET", path)
        if reply.status != 200:
            wrong.append(f"GET {path} without a token: {reply.status}")
    _record("REST", len(REST_ADMIN) + len(REST_STREAMING_ADMIN), results, wrong)
    assert not wrong, "\n".join(wrong)


def _record(kind: str, operations: int, results: dict[str, Any], wrong: list[str]) -> None:
    record(
        f"admin token checks ({kind})",
        tried=(
            f"every admin {'RPC' if kind == 'gRPC' else 'route'} with no token, a wrong one, "
            "a prefix of the right one, the right one plus a character, the wrong scheme and "
            "the right one; and against servers with no ADMIN_TOKEN (all refused)"
        ),
        cases=f"{operations} operations x {len(CREDENTIALS)} credentials x 2 servers",
        lost="nothing" if not wrong else f"{len(wrong)} wrong answers",
        figures={"answers": results, "wrong": wrong[:20]},
        passed=not wrong,
    )


def test_admin_tokens_are_compared_in_constant_time_only() -> None:
    auth = REPO / "services" / "common" / "auth.py"
    tree = ast.parse(auth.read_text())
    digests = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "hmac.compare_digest"
    ]
    assert digests, "AdminAuth must compare tokens with hmac.compare_digest"
    offenders = []
    for path in sorted((REPO / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            text = ast.unparse(node)
            # `token is None` is no secret comparison; ==, != and `in` on a token are.
            if not any(isinstance(op, ast.Is | ast.IsNot) for op in node.ops) and (
                "admin_token" in text.lower()
                or (path == auth and "_token" in text)
                or "presented" in text
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {text}")
    assert not offenders, offenders


def test_the_admin_token_reaches_only_the_auth_check_and_the_forwarded_header() -> None:
    """Reading ADMIN_TOKEN anywhere but config modules would bypass the one checked path."""
    readers = sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "services").rglob("*.py")
        if '"ADMIN_TOKEN"' in path.read_text()
    )
    assert readers == [
        "services/cache/config.py",
        # The CLI sends the operator's token (--token, default ADMIN_TOKEN); it checks nothing.
        "services/cli/app.py",
        "services/gateway/config.py",
        # The launcher generates the token and hands it to its children's environment.
        "services/launcher/supervisor.py",
        "services/sector/config.py",
    ], readers
    uses = sorted(
        f"{path.relative_to(REPO)}"
        for path in (REPO / "services").rglob("*.py")
        if "AdminAuth(" in path.read_text() and path.name != "auth.py"
    )
    assert uses == [
        "services/cache/server.py",
        "services/gateway/app.py",
        "services/sector/server.py",
    ], uses
