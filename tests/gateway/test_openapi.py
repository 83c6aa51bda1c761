"""The OpenAPI document: valid, complete, and true to the JSON the gateway emits."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import schemathesis
from google.protobuf import descriptor, message
from google.protobuf.descriptor import FieldDescriptor

from services.gateway.openapi import build_openapi
from services.gateway.routes import Route, api_services, build_routes
from services.gateway.transcode import message_json

ROUTES = build_routes(api_services())


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_openapi(ROUTES)


def _operation(doc: dict[str, Any], route: Route) -> dict[str, Any]:
    return doc["paths"][route.template.openapi_path()][route.http_method.lower()]  # type: ignore[no-any-return]


def test_the_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    schemathesis.openapi.from_dict(doc).validate()
    assert doc["openapi"] == "3.0.3"


def test_every_route_is_an_operation_with_errors_and_security(doc: dict[str, Any]) -> None:
    operation_ids = set()
    for route in ROUTES:
        operation = _operation(doc, route)
        operation_ids.add(operation["operationId"])
        status_ref = {"$ref": "#/components/schemas/google.rpc.Status"}
        assert (
            operation["responses"]["default"]["content"]["application/json"]["schema"] == status_ref
        )
        assert "400" in operation["responses"]
        if route.admin:
            assert operation["security"] == [{"bearerAuth": []}]
            assert {"401", "403"} <= set(operation["responses"])
        else:
            assert "security" not in operation
    assert len(operation_ids) == len(ROUTES)
    assert {"/healthz", "/readyz", "/metrics"} <= set(doc["paths"])


def test_parameters_and_bodies(doc: dict[str, Any]) -> None:
    quotes = doc["paths"]["/api/v1/market/quotes"]["get"]
    assert quotes["parameters"] == [
        {
            "name": "symbols",
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": {"type": "string"}},
            "style": "form",
            "explode": True,
        }
    ]
    news = doc["paths"]["/api/v1/market/news/{symbol}"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in news] == [
        ("symbol", "path"),
        ("date", "query"),
        ("limit", "query"),
    ]
    assert news[0]["required"] is True and news[0]["schema"]["minLength"] == 1
    assert news[2]["schema"] == {
        "type": "integer",
        "format": "int32",
        "minimum": -(2**31),
        "maximum": 2**31 - 1,
    }
    put = doc["paths"]["/api/v1/cache/keys/{key}"]["put"]
    body = put["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"value", "ttlSeconds"}  # the key comes from the path
    assert "type" not in body["properties"]["value"]  # any JSON
    assert body["properties"]["ttlSeconds"]["type"] == "integer"
    assert put["parameters"] == [
        {
            "name": "key",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        }
    ]
    mget = doc["paths"]["/api/v1/cache/mget"]["post"]
    assert "security" not in mget and mget["parameters"] == []
    assert "description" in mget


def test_message_schemas(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    metrics = schemas["marketcache.v1.CacheMetrics"]
    assert metrics["additionalProperties"] is False
    assert metrics["properties"]["hitRate"] == {"type": "number", "format": "double"}
    assert metrics["properties"]["memoryBytes"]["type"] == "integer"
    assert metrics["properties"]["prefixes"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/marketcache.v1.PrefixMetrics"},
    }
    quote = schemas["marketcache.v1.Quote"]["properties"]
    assert quote["timestamp"] == {"type": "string", "format": "date-time"}


def _populate(msg: message.Message, depth: int = 0) -> None:
    """Set every field to a non-default value, two items per repeated field."""
    desc: descriptor.Descriptor = msg.DESCRIPTOR  # type: ignore[assignment]
    for field in desc.fields:
        if field.message_type is not None:
            name = field.message_type.full_name
            if field.is_repeated:
                for _ in range(2):
                    _fill(getattr(msg, field.name).add(), name, depth)
            else:
                _fill(getattr(msg, field.name), name, depth)
        elif field.is_repeated:
            getattr(msg, field.name).extend([_scalar(field), _scalar(field)])
        else:
            setattr(msg, field.name, _scalar(field))


def _fill(target: message.Message, full_name: str, depth: int) -> None:
    if full_name == "google.protobuf.Value":
        target.struct_value.update({"n": 1, "s": "x", "l": [True, None]})  # type: ignore[attr-defined]
    elif full_name == "google.protobuf.Timestamp":
        target.FromSeconds(1736935200)  # type: ignore[attr-defined]
    elif depth < 4:
        _populate(target, depth + 1)


def _scalar(field: FieldDescriptor) -> object:
    if field.type == FieldDescriptor.TYPE_STRING:
        return "text"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 1.25
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number  # type: ignore[union-attr]
    if field.type == FieldDescriptor.TYPE_BYTES:
        return b"\x00\x01"
    return 2**40 if field.cpp_type == FieldDescriptor.CPPTYPE_INT64 else 7


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.operation_id)
def test_emitted_json_matches_the_response_schema(doc: dict[str, Any], route: Route) -> None:
    reply = route.rpc.response_class()
    _populate(reply)
    schema = _operation(doc, route)["responses"]["200"]["content"]["application/json"]["schema"]
    # Validate with the document's components in scope, so $refs resolve.
    jsonschema.validate(message_json(reply), {**schema, "components": doc["components"]})
    empty = message_json(route.rpc.response_class())
    jsonschema.validate(empty, {**schema, "components": doc["components"]})


def test_an_int64_as_a_string_would_not_match(doc: dict[str, Any]) -> None:
    # The check above can fail: protojson's default (int64 as strings) is rejected.
    schema = {"$ref": "#/components/schemas/marketcache.v1.ClearResponse", **doc}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"prefix": "p", "deleted": "5"}, schema)


def test_the_streaming_routes_are_documented_with_their_media_types(doc: dict[str, Any]) -> None:
    export = doc["paths"]["/api/v1/cache/export"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"application/x-ndjson"}
    assert [p["name"] for p in export["parameters"]] == ["prefix"]
    imported = doc["paths"]["/api/v1/cache/import"]["post"]
    assert set(imported["requestBody"]["content"]) == {"application/x-ndjson"}
    for operation in (export, imported):
        assert operation["security"] == [{"bearerAuth": []}]
        assert {"401", "403"} <= set(operation["responses"])
    events = doc["paths"]["/api/v1/events"]["get"]
    assert set(events["responses"]["200"]["content"]) == {"text/event-stream"}
    assert "security" not in events
