"""The route table: built from every annotation, most specific route first, 404 and 405."""

from __future__ import annotations

import pytest
from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from services.gateway.routes import (
    MethodNotAllowedError,
    NoRouteError,
    Router,
    RouteTableError,
    api_modules,
    api_services,
    build_routes,
    http_rules,
)


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(build_routes(api_services()))


def test_every_annotated_rpc_of_every_proto_has_its_routes(router: Router) -> None:
    modules = api_modules()
    assert {m.DESCRIPTOR.name for m in modules} >= {
        "marketcache/v1/cache.proto",
        "marketcache/v1/market_data.proto",
        "marketcache/v1/sector.proto",
    }
    expected = set()
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                for rule in http_rules(method):
                    kind = rule.WhichOneof("pattern")
                    expected.add((kind.upper(), getattr(rule, kind), method.full_name))
    assert expected, "the protos carry google.api.http annotations"
    actual = {(r.http_method, r.template.template, r.rpc.full_name) for r in router.routes}
    assert actual == expected


# Streaming RPCs the shim does not transcode (it speaks unary HTTP/JSON only);
# a new streaming RPC is added here on purpose, with its REST story in the README.
STREAMING = {"Watch", "Export", "Import"}


def test_every_rpc_is_annotated() -> None:
    # The REST shim is the only way a browser reaches the API: an unannotated RPC is a gap.
    streaming = set()
    for service in api_services():
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                streaming.add(method.name)
                assert not http_rules(method), f"{method.full_name} streams: no http rule"
            else:
                assert http_rules(method), f"{method.full_name} has no google.api.http rule"
    assert streaming == STREAMING


@pytest.mark.parametrize(
    ("method", "path", "rpc", "params"),
    [
        ("GET", "/api/v1/sectors/snapshot", "SectorService.GetSectorSnapshot", {}),
        ("GET", "/api/v1/sectors/XLK", "SectorService.GetSectorData", {"symbol": "XLK"}),
        ("GET", "/api/v1/sectors", "SectorService.ListSectors", {}),
        ("GET", "/api/v1/sectors/cache/stats", "SectorService.GetCacheStats", {}),
        ("DELETE", "/api/v1/sectors/cache", "SectorService.ClearAllCaches", {}),
        # Only DELETE has the literal: a GET of "cache" is a symbol, like any other.
        ("GET", "/api/v1/sectors/cache", "SectorService.GetSectorData", {"symbol": "cache"}),
        ("GET", "/api/v1/cache/owners", "CacheService.ListOwners", {}),
        ("GET", "/api/v1/cache/owners/stock", "CacheService.GetOwnership", {"prefix": "stock"}),
        ("PUT", "/api/v1/cache/keys/stock%3AAAPL", "CacheService.Set", {"key": "stock:AAPL"}),
        ("GET", "/api/v1/market/quotes", "MarketDataService.GetQuotes", {}),
        ("GET", "/api/v1/market/quotes/MSFT", "MarketDataService.GetQuote", {"symbol": "MSFT"}),
    ],
)
def test_resolve_picks_the_most_specific_route(
    router: Router, method: str, path: str, rpc: str, params: dict[str, str]
) -> None:
    found = router.resolve(method, path)
    assert found.route.rpc.full_name == f"marketcache.v1.{rpc}"
    assert found.params == params


def test_one_trailing_slash_is_tolerated(router: Router) -> None:
    assert router.resolve("GET", "/api/v1/cache/health/").route.rpc.name == "Health"
    with pytest.raises(NoRouteError):
        router.resolve("GET", "/api/v1/cache/health//")
    # The slash does not turn into an empty key: /keys alone has no route.
    with pytest.raises(NoRouteError):
        router.resolve("GET", "/api/v1/cache/keys/")


def test_unknown_path_and_wrong_method(router: Router) -> None:
    with pytest.raises(NoRouteError):
        router.resolve("GET", "/api/v1/nope")
    with pytest.raises(MethodNotAllowedError) as exc:
        router.resolve("POST", "/api/v1/cache/keys/stock:AAPL")
    assert exc.value.allowed == ("DELETE", "GET", "HEAD", "PUT")
    with pytest.raises(MethodNotAllowedError) as exc:
        router.resolve("GET", "/api/v1/cache/mset")
    assert exc.value.allowed == ("POST",)


def test_admin_table(router: Router) -> None:
    admin = {r.rpc.name for r in router.routes if r.admin}
    assert admin == {
        "Set",
        "Delete",
        "MSet",
        "WriteBatch",
        "Clear",
        "WarmCache",
        "ClearAllCaches",
        "SetBatchSectorData",
    }
    assert all(r.http_method != "GET" for r in router.routes if r.admin)


def test_additional_bindings_become_routes() -> None:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="gateway_test/bindings.proto",
        package="gateway_test",
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    request = file_proto.message_type.add(name="Req")
    request.field.add(name="name", number=1, type=9, label=1, json_name="name")
    file_proto.message_type.add(name="Resp")
    method = file_proto.service.add(name="Svc").method.add(
        name="Do", input_type=".gateway_test.Req", output_type=".gateway_test.Resp"
    )
    rule = http_pb2.HttpRule(get="/v1/things/{name}")
    rule.additional_bindings.add(post="/v2/things", body="*")
    rule.additional_bindings.add(custom=http_pb2.CustomHttpPattern(kind="patch", path="/v3/x"))
    method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    file_desc = _add_file(file_proto)
    routes = build_routes([file_desc.services_by_name["Svc"]])
    assert [(r.http_method, r.template.template, r.body, r.binding) for r in routes] == [
        ("GET", "/v1/things/{name}", "", 0),
        ("POST", "/v2/things", "*", 1),
        ("PATCH", "/v3/x", "", 2),
    ]
    assert [r.operation_id for r in routes] == ["Svc_Do", "Svc_Do_1", "Svc_Do_2"]
    assert [r.admin for r in routes] == [False, True, True]


def test_a_template_naming_an_unknown_field_fails_the_build() -> None:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="gateway_test/bad.proto",
        package="gateway_test_bad",
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    file_proto.message_type.add(name="Req")
    file_proto.message_type.add(name="Resp")
    method = file_proto.service.add(name="Svc").method.add(
        name="Do", input_type=".gateway_test_bad.Req", output_type=".gateway_test_bad.Resp"
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(http_pb2.HttpRule(get="/v1/{nope}"))
    file_desc = _add_file(file_proto)
    with pytest.raises(RouteTableError, match="nope"):
        build_routes([file_desc.services_by_name["Svc"]])


def _add_file(file_proto: descriptor_pb2.FileDescriptorProto) -> descriptor.FileDescriptor:
    """Add a test file to the default pool once (tests may run twice in one process)."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(file_proto.name)
    except KeyError:
        pool.Add(file_proto)
        return pool.FindFileByName(file_proto.name)
