"""Building gRPC requests from path, query and JSON body; turning replies into JSON.

JSON follows protojson (lowerCamelCase names, zero values printed, Value as
plain JSON, Timestamp as RFC 3339) with two deliberate differences. 64-bit
integers are JSON numbers, not strings. Every int64 this API returns is a count,
a byte size, seconds or an epoch, far below 2^53, so JavaScript reads them
exactly, and REST clients need not parse strings; requests accept both. And
integral numbers inside JSON values come back as integers ({"volume": 100},
not 100.0), as services.common.json_value does for Python clients.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, cast

from google.protobuf import descriptor, json_format, message, struct_pb2
from google.protobuf.descriptor import FieldDescriptor

from services.common.errors import invalid_argument
from services.common.json_value import from_value
from services.gateway.fields import (
    FieldError,
    dotted,
    is_map,
    map_value_field,
    resolve_path,
    set_path,
)
from services.gateway.routes import Match, Route

_INT64 = {
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT64,
}
_INT64_WRAPPERS = {"google.protobuf.Int64Value", "google.protobuf.UInt64Value"}
# JSON-valued well-known types, each wrapped into a Value for json_value.from_value.
_JSON_VALUES: dict[str, Callable[[Any], struct_pb2.Value]] = {
    "google.protobuf.Value": lambda v: v,
    "google.protobuf.Struct": lambda v: struct_pb2.Value(struct_value=v),
    "google.protobuf.ListValue": lambda v: struct_pb2.Value(list_value=v),
}


def build_request(match: Match, query: Iterable[tuple[str, str]], body: bytes) -> message.Message:
    """The request message for a matched route; ServiceError(INVALID_ARGUMENT) on bad input."""
    route = match.route
    request = route.rpc.request_class()
    _merge_body(route, request, body)
    for field_path, chain in route.path_fields:
        text = match.params[field_path]
        if text == "":
            raise invalid_argument(f"path parameter {field_path!r} is empty", field_path)
        _check_body_agrees(request, chain, text, field_path)
        try:
            set_path(request, chain, [text])
        except FieldError as exc:
            raise invalid_argument(f"path parameter {exc}", exc.field) from None
    _merge_query(route, request, query)
    return request


def _merge_body(route: Route, request: message.Message, body: bytes) -> None:
    if not body.strip():
        return
    if route.body == "":
        raise invalid_argument(
            f"{route.http_method} {route.template.template} takes no request body; "
            "send its fields as path or query parameters"
        )
    data = parse_json(body)
    field = route.body_field()
    if field is None:
        if not isinstance(data, dict):
            raise invalid_argument(
                f"the request body must be a JSON object ({route.rpc.input.name}), "
                f"got {type(data).__name__}"
            )
    else:
        data = {field.json_name: data}
    try:
        json_format.ParseDict(data, request)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise invalid_argument(
            f"the request body does not fit {route.rpc.input.name}: {exc}"
        ) from None


def parse_json(body: bytes) -> Any:
    """Decode a JSON body strictly (UTF-8, no NaN/Infinity); ServiceError when it is not."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_argument("the request body is not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise invalid_argument(
            f"the request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise invalid_argument("the request body is nested too deeply") from None


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _check_body_agrees(
    request: message.Message, chain: tuple[FieldDescriptor, ...], text: str, field_path: str
) -> None:
    # A body that names a different key than the path is a client mistake worth
    # a clear 400, rather than silently letting the path win.
    target: message.Message = request
    for field in chain[:-1]:
        if not target.HasField(field.name):
            return
        target = getattr(target, field.name)
    leaf = chain[-1]
    if leaf.message_type is not None or leaf.type != FieldDescriptor.TYPE_STRING:
        return
    current = getattr(target, leaf.name)
    if current and current != text:
        raise invalid_argument(
            f"{field_path!r} is {text!r} in the path but {current!r} in the body; "
            "leave it out of the body",
            field_path,
        )


def _merge_query(route: Route, request: message.Message, query: Iterable[tuple[str, str]]) -> None:
    grouped: dict[str, tuple[tuple[FieldDescriptor, ...], list[str]]] = {}
    for name, value in query:
        chain = _query_field(route, name)
        key = dotted(chain, json_names=False)
        grouped.setdefault(key, (chain, []))[1].append(value)
    for chain, values in grouped.values():
        leaf = chain[-1]
        texts = values
        if leaf.is_repeated and leaf.message_type is None:
            # Repeated scalars also take comma lists: ?symbols=AAPL,MSFT.
            texts = [item.strip() for value in values for item in value.split(",")]
            texts = [item for item in texts if item]
        try:
            set_path(request, chain, texts)
        except FieldError as exc:
            raise invalid_argument(f"query parameter {exc}", exc.field) from None


def _query_field(route: Route, name: str) -> tuple[FieldDescriptor, ...]:
    where = f"{route.http_method} {route.template.template}"
    if route.body == "*":
        raise invalid_argument(
            f"{where} takes its fields in the JSON body; query parameter {name!r} is not accepted",
            name,
        )
    try:
        chain = tuple(resolve_path(route.rpc.input, name))
    except FieldError as exc:
        raise invalid_argument(
            f"unknown query parameter {name!r} for {where}: {exc}{_known_hint(route)}", name
        ) from None
    proto_path = dotted(chain, json_names=False)
    for field_path, path_chain in route.path_fields:
        bound = dotted(path_chain, json_names=False)
        if (
            proto_path == bound
            or proto_path.startswith(bound + ".")
            or bound.startswith(proto_path + ".")
        ):
            raise invalid_argument(
                f"query parameter {name!r} is set by the path ({{{field_path}}})", name
            )
    body = route.body_field()
    if body is not None and chain[0].name == body.name:
        raise invalid_argument(f"query parameter {name!r} is set by the request body", name)
    if is_map(chain[-1]):
        raise invalid_argument(f"query parameter {name!r} is a map; it cannot be set here", name)
    return chain


def _known_hint(route: Route) -> str:
    names = query_field_names(route)
    return f" (query parameters: {', '.join(names)})" if names else " (it takes none)"


def query_field_names(route: Route) -> list[str]:
    """The top-level JSON names a route accepts as query parameters."""
    if route.body == "*":
        return []
    taken = {chain[0].name for _, chain in route.path_fields if len(chain) == 1}
    body = route.body_field()
    if body is not None:
        taken.add(body.name)
    return [f.json_name for f in route.rpc.input.fields if f.name not in taken]


def response_json(route: Route, reply: message.Message) -> Any:
    """The JSON answer for a reply, honouring the rule's response_body."""
    data = message_json(reply)
    if not route.response_body:
        return data
    field = route.rpc.output.fields_by_name[route.response_body]
    if field.json_name in data:
        return data[field.json_name]
    return {}  # an unset message field


def message_json(msg: message.Message) -> dict[str, Any]:
    """protojson of a message: zero values printed, 64-bit integers as numbers,
    and JSON values (google.protobuf.Value) with integral numbers as integers."""
    data: dict[str, Any] = json_format.MessageToDict(msg, always_print_fields_with_no_presence=True)
    _refine(data, msg)
    return data


def _refine(data: dict[str, Any], msg: message.Message) -> None:
    # Walks the message beside its protojson dict: the dict alone cannot tell an
    # int64 string from a string field, nor where a Value starts.
    desc = cast(descriptor.Descriptor, msg.DESCRIPTOR)
    for field in desc.fields:
        key = field.json_name
        if key not in data:
            continue
        current = getattr(msg, field.name)
        if is_map(field):
            value_field = map_value_field(field)
            data[key] = {
                _map_key(k): _refine_one(value_field, data[key][_map_key(k)], v)
                for k, v in current.items()
            }
        elif field.is_repeated:
            data[key] = [
                _refine_one(field, item, value)
                for item, value in zip(data[key], current, strict=True)
            ]
        else:
            data[key] = _refine_one(field, data[key], current)


def _refine_one(field: FieldDescriptor, data: Any, value: Any) -> Any:
    if field.message_type is None:
        return int(data) if field.cpp_type in _INT64 and isinstance(data, str) else data
    full_name = field.message_type.full_name
    if full_name in _JSON_VALUES:
        # Value keeps every number as a double; {"volume": 100} comes back as 100.
        return from_value(_JSON_VALUES[full_name](value))
    if full_name in _INT64_WRAPPERS:
        return int(data) if isinstance(data, str) else data
    if not full_name.startswith("google.protobuf.") and isinstance(data, dict):
        _refine(data, value)
    return data


def _map_key(key: object) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)
