"""Transcoding features our own protos do not use yet, on a test service built at run time:
nested query fields, enums, timestamps, repeated integers, maps, a named body field,
response_body and a custom verb."""

from __future__ import annotations

from typing import Any

import pytest
from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, timestamp_pb2
from google.protobuf.descriptor_pb2 import FieldDescriptorProto as F

from services.common.errors import ServiceError
from services.gateway.openapi import build_openapi
from services.gateway.routes import Router, build_routes
from services.gateway.transcode import build_request, response_json

PACKAGE = "gateway_generic_test"


def _service() -> descriptor.ServiceDescriptor:
    pool = descriptor_pool.Default()
    name = f"{PACKAGE}/things.proto"
    try:
        return pool.FindFileByName(name).services_by_name["Things"]
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(
        name=name,
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/api/annotations.proto", "google/protobuf/timestamp.proto"],
    )
    kind = proto.enum_type.add(name="Kind")
    kind.value.add(name="KIND_UNSPECIFIED", number=0)
    kind.value.add(name="KIND_B", number=1)
    filt = proto.message_type.add(name="Filter")
    filt.field.add(name="min_price", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    filt.field.add(name="tags", number=2, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    req = proto.message_type.add(name="Req")
    entry = req.nested_type.add(name="LabelsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    fields: list[tuple[str, int, int, str]] = [
        ("name", F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
        ("filter", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, f".{PACKAGE}.Filter"),
        ("ids", F.TYPE_INT64, F.LABEL_REPEATED, ""),
        ("flag", F.TYPE_BOOL, F.LABEL_OPTIONAL, ""),
        ("kind", F.TYPE_ENUM, F.LABEL_OPTIONAL, f".{PACKAGE}.Kind"),
        ("since", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".google.protobuf.Timestamp"),
        ("labels", F.TYPE_MESSAGE, F.LABEL_REPEATED, f".{PACKAGE}.Req.LabelsEntry"),
    ]
    for number, (field_name, kind_, label, type_name) in enumerate(fields, start=1):
        added = req.field.add(name=field_name, number=number, type=kind_, label=label)
        if type_name:
            added.type_name = type_name
    resp = proto.message_type.add(name="Resp")
    resp.field.add(
        name="filter",
        number=1,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_OPTIONAL,
        type_name=f".{PACKAGE}.Filter",
    )
    resp.field.add(name="total", number=2, type=F.TYPE_UINT64, label=F.LABEL_OPTIONAL)
    counts = resp.nested_type.add(name="CountsEntry")
    counts.options.map_entry = True
    counts.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    counts.field.add(name="value", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    resp.field.add(
        name="counts",
        number=3,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=f".{PACKAGE}.Resp.CountsEntry",
    )
    method = proto.service.add(name="Things").method.add(
        name="Find", input_type=f".{PACKAGE}.Req", output_type=f".{PACKAGE}.Resp"
    )
    rule = http_pb2.HttpRule(get="/v1/things/{name}")
    rule.additional_bindings.add(
        post="/v1/things/{name}:search", body="filter", response_body="filter"
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    pool.Add(proto)
    return pool.FindFileByName(name).services_by_name["Things"]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(build_routes([_service()]))


def _build(
    router: Router, method: str, path: str, query: list[tuple[str, str]], body: bytes = b""
) -> Any:
    return build_request(router.resolve(method, path), query, body)


def test_nested_enum_timestamp_and_repeated_query_fields(router: Router) -> None:
    request = _build(
        router,
        "GET",
        "/v1/things/widget",
        [
            ("filter.minPrice", "1.5"),
            ("filter.tags", "a,b"),
            ("filter.tags", "c"),
            ("ids", "1,2"),
            ("ids", "3"),
            ("flag", "true"),
            ("kind", "KIND_B"),
            ("since", "2025-01-15T10:00:00Z"),
        ],
    )
    assert request.name == "widget"
    assert request.filter.min_price == 1.5
    assert list(request.filter.tags) == ["a", "b", "c"]
    assert list(request.ids) == [1, 2, 3]
    assert request.flag is True
    assert request.kind == 1
    assert request.since == timestamp_pb2.Timestamp(seconds=1736935200)
    snake = _build(router, "GET", "/v1/things/w", [("filter.min_price", "2"), ("kind", "1")])
    assert (snake.filter.min_price, snake.kind) == (2.0, 1)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ([("kind", "KIND_Z")], "must be one of KIND_UNSPECIFIED, KIND_B"),
        ([("ids", "1,x")], "integer"),
        ([("flag", "maybe")], "boolean"),
        ([("since", "yesterday")], "since"),
        ([("labels", "a")], "map"),
        ([("filter", "x")], "message"),
        ([("filter.nope", "1")], "no field 'nope'"),
        ([("name", "other")], "set by the path"),
        ([("filter.minPrice", "1e999")], "out of range"),
    ],
)
def test_bad_query_values(router: Router, query: list[tuple[str, str]], fragment: str) -> None:
    with pytest.raises(ServiceError) as exc:
        _build(router, "GET", "/v1/things/w", query)
    assert fragment in exc.value.message


def test_named_body_field_custom_verb_and_response_body(router: Router) -> None:
    found = router.resolve("POST", "/v1/things/w:search")
    assert found.route.binding == 1
    request: Any = build_request(found, [("flag", "true")], b'{"minPrice": 3, "tags": ["x"]}')
    assert request.name == "w"
    assert request.filter.min_price == 3.0 and list(request.filter.tags) == ["x"]
    assert request.flag is True
    with pytest.raises(ServiceError, match="set by the request body"):
        build_request(found, [("filter.minPrice", "1")], b"{}")
    # A class built at run time from the test's descriptor: no stubs know its fields.
    response_class: Any = found.route.rpc.response_class
    reply = response_class(total=2**60)
    reply.filter.min_price = 4.5
    assert response_json(found.route, reply) == {"minPrice": 4.5, "tags": []}
    reply.counts["a"] = 2**40
    get = router.resolve("GET", "/v1/things/w").route
    data = response_json(get, reply)
    assert data["total"] == 2**60  # uint64 as a number
    assert data["counts"] == {"a": 2**40}  # int64 map values too


def test_openapi_for_the_generic_service(router: Router) -> None:
    doc = build_openapi(router.routes)
    get = doc["paths"]["/v1/things/{name}"]["get"]
    names = [p["name"] for p in get["parameters"]]
    assert names == ["name", "filter.minPrice", "filter.tags", "ids", "flag", "kind", "since"]
    kind = next(p for p in get["parameters"] if p["name"] == "kind")
    assert kind["schema"] == {"type": "string", "enum": ["KIND_UNSPECIFIED", "KIND_B"]}
    search = doc["paths"]["/v1/things/{name}:search"]["post"]
    body = search["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": f"#/components/schemas/{PACKAGE}.Filter"}
    assert "filter.minPrice" not in [p["name"] for p in search["parameters"]]
    ok = search["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": f"#/components/schemas/{PACKAGE}.Filter"}
    counts = doc["components"]["schemas"][f"{PACKAGE}.Resp"]["properties"]["counts"]
    assert counts["type"] == "object"
    assert counts["additionalProperties"]["type"] == "integer"
