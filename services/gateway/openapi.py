"""OpenAPI 3.0 for the REST shim, generated from the same descriptors as the routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor

from services.gateway.events import EVENT_STREAM, EVENTS_PATH, KINDS
from services.gateway.fields import is_map, is_text_message_type
from services.gateway.routes import READS_OVER_POST, Route
from services.gateway.schemas import Schema, SchemaBuilder, text_param_schema
from services.gateway.transfer import EXPORT_PATH, IMPORT_PATH, NDJSON

STATUS_REF = "#/components/schemas/google.rpc.Status"
_QUERY_DEPTH = 3  # how deep dotted query names go into nested messages


def build_openapi(routes: Sequence[Route], title: str = "marketcache REST API") -> dict[str, Any]:
    """The OpenAPI 3.0.3 document for the routes and the gateway's own endpoints."""
    builder = SchemaBuilder()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template.openapi_path(), {})[route.http_method.lower()] = _operation(
            builder, route
        )
    paths.update(_own_paths())
    paths.update(_streaming_paths())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": "v1",
            "description": (
                "HTTP/JSON transcoding of the marketcache gRPC services, from their "
                "google.api.http annotations. Errors are google.rpc.Status JSON. 64-bit "
                "integers are JSON numbers. Repeated query parameters take repeats "
                "(?symbols=A&symbols=B) or a comma list (?symbols=A,B); unknown query "
                "parameters are a 400."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Authorization: Bearer <ADMIN_TOKEN>, for admin routes.",
                }
            },
        },
    }


def _operation(builder: SchemaBuilder, route: Route) -> dict[str, Any]:
    rpc = route.rpc
    path_names = {chain[0].name for _, chain in route.path_fields if len(chain) == 1}
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "tags": [rpc.service.rpartition(".")[2]],
        "summary": f"{rpc.full_name}" + (" (admin)" if route.admin else ""),
        "parameters": [*_path_parameters(route), *_query_parameters(route)],
        "responses": _responses(builder, route),
    }
    if rpc.full_name in READS_OVER_POST:
        operation["description"] = READS_OVER_POST[rpc.full_name]
    body_schema = _body_schema(builder, route, path_names)
    if body_schema is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body_schema}},
        }
    if route.admin:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    params = []
    for field_path, chain in route.path_fields:
        schema = text_param_schema(chain[-1])
        if schema.get("type") == "string":
            schema["minLength"] = 1
        params.append({"name": field_path, "in": "path", "required": True, "schema": schema})
    return params


def _query_parameters(route: Route) -> list[dict[str, Any]]:
    if route.body == "*":
        return []
    taken = {".".join(f.name for f in chain) for _, chain in route.path_fields}
    body = route.body_field()
    if body is not None:
        taken.add(body.name)
    params: list[dict[str, Any]] = []
    _collect_query(route.rpc.input, ("", ""), taken=taken, out=params, depth=0)
    return params


def _collect_query(
    desc: descriptor.Descriptor,
    prefixes: tuple[str, str],
    *,
    taken: set[str],
    out: list[dict[str, Any]],
    depth: int,
) -> None:
    proto_prefix, json_prefix = prefixes
    for field in desc.fields:
        proto_name = proto_prefix + field.name
        json_name = json_prefix + field.json_name
        if proto_name in taken or is_map(field):
            continue
        if field.message_type is not None and not is_text_message_type(field):
            if not field.is_repeated and depth + 1 < _QUERY_DEPTH:
                _collect_query(
                    field.message_type,
                    (proto_name + ".", json_name + "."),
                    taken=taken,
                    out=out,
                    depth=depth + 1,
                )
            continue
        leaf = text_param_schema(field)
        param: dict[str, Any] = {"name": json_name, "in": "query", "required": False}
        if field.is_repeated:
            param["schema"] = {"type": "array", "items": leaf}
            param["style"] = "form"
            param["explode"] = True
        else:
            param["schema"] = leaf
        out.append(param)


def _body_schema(builder: SchemaBuilder, route: Route, path_names: set[str]) -> Schema | None:
    if route.body == "":
        return None
    if route.body == "*":
        if not path_names:
            return builder.message_ref(route.rpc.input)
        # The path carries these fields; the body schema leaves them out.
        return builder.message_schema(route.rpc.input, skip=sorted(path_names))
    field = route.body_field()
    assert field is not None
    return builder.field_schema(field)


def _responses(builder: SchemaBuilder, route: Route) -> dict[str, Any]:
    if route.response_body:
        field = route.rpc.output.fields_by_name[route.response_body]
        schema = builder.field_schema(field)
    else:
        schema = builder.message_ref(route.rpc.output)
    error = {"content": {"application/json": {"schema": {"$ref": STATUS_REF}}}}
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
        "400": {"description": "Bad input (INVALID_ARGUMENT and friends)", **error},
    }
    if route.admin:
        responses["401"] = {"description": "No bearer token (UNAUTHENTICATED)", **error}
        responses["403"] = {"description": "Wrong token or admin disabled", **error}
    responses["default"] = {"description": "Any other gRPC status, as google.rpc.Status", **error}
    return responses


def _own_paths() -> dict[str, dict[str, Any]]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    ready = {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["ready", "backends"],
                "properties": {
                    "ready": {"type": "boolean"},
                    "message": {"type": "string"},
                    "backends": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "address": {"type": "string"},
                                "status": {"type": "string"},
                            },
                        },
                    },
                },
            }
        }
    }
    return {
        "/healthz": {
            "get": {
                "operationId": "Gateway_Healthz",
                "tags": ["Gateway"],
                "summary": "Liveness: 200 while the process runs",
                "responses": {"200": {"description": "alive", "content": text}},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "Gateway_Readyz",
                "tags": ["Gateway"],
                "summary": "Readiness: 200 when every backend's gRPC health is SERVING",
                "responses": {
                    "200": {"description": "every backend SERVING", "content": ready},
                    "503": {"description": "a backend is not SERVING", "content": ready},
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "Gateway_Metrics",
                "tags": ["Gateway"],
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "exposition format", "content": text}},
            }
        },
    }


def _streaming_paths() -> dict[str, dict[str, Any]]:
    """The routes served beside the route table, because they stream."""
    error = {"content": {"application/json": {"schema": {"$ref": STATUS_REF}}}}
    admin_errors = {
        "401": {"description": "No bearer token (UNAUTHENTICATED)", **error},
        "403": {"description": "Wrong token or admin disabled", **error},
        "default": {"description": "Any other gRPC status, as google.rpc.Status", **error},
    }
    lines = {
        "schema": {
            "type": "string",
            "description": 'JSON Lines: one {"key", "value", "ttlSeconds"} object per line.',
        },
        "example": '{"key":"stock:AAPL","value":{"price":187.5},"ttlSeconds":60}\n',
    }
    return {
        EXPORT_PATH: {
            "get": {
                "operationId": "CacheService_ExportLines",
                "tags": ["CacheService"],
                "summary": "marketcache.v1.CacheService.Export as JSON Lines (admin)",
                "description": (
                    "Every live entry of one prefix (or of all) with its remaining TTL, "
                    "streamed. A transfer cut off midway ends the connection unfinished."
                ),
                "parameters": [
                    {
                        "name": "prefix",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "One prefix; absent for every prefix.",
                    }
                ],
                "responses": {
                    "200": {"description": "the entries", "content": {NDJSON: lines}},
                    "400": {"description": "Bad prefix (INVALID_ARGUMENT)", **error},
                    **admin_errors,
                },
                "security": [{"bearerAuth": []}],
            }
        },
        IMPORT_PATH: {
            "post": {
                "operationId": "CacheService_ImportLines",
                "tags": ["CacheService"],
                "summary": "marketcache.v1.CacheService.Import from JSON Lines (admin)",
                "description": (
                    "Entries in chunks, each validated whole and durable before the next; "
                    "a bad line names its number, and the chunks before it stay imported."
                ),
                "requestBody": {"required": True, "content": {NDJSON: lines}},
                "responses": {
                    "200": {
                        "description": "imported",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["imported", "chunks"],
                                    "properties": {
                                        "imported": {"type": "integer"},
                                        "chunks": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    "400": {"description": "A bad line (INVALID_ARGUMENT)", **error},
                    **admin_errors,
                },
                "security": [{"bearerAuth": []}],
            }
        },
        EVENTS_PATH: {
            "get": {
                "operationId": "Gateway_Events",
                "tags": ["Gateway"],
                "summary": "Server-Sent Events for dashboards (the stream never ends by itself)",
                "description": (
                    "The current state first, then each change: `snapshot` and `sector` "
                    "(the sector data, pushed by the cache's Watch), `metrics` (GetMetrics, "
                    "every second), `backends` (each backend's health, when it changes) and "
                    "`unavailable` (a part that could not be read). Every `data:` is one "
                    "JSON object. One feed serves every open stream of a gateway."
                ),
                "responses": {
                    "200": {
                        "description": "the event stream",
                        "content": {
                            EVENT_STREAM: {
                                "schema": {
                                    "type": "string",
                                    "description": "events named " + ", ".join(KINDS),
                                }
                            }
                        },
                    }
                },
            }
        },
    }
