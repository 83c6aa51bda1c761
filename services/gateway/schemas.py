"""JSON schemas of protobuf messages and fields, as the gateway's JSON renders them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor
from google.protobuf.descriptor import FieldDescriptor

from services.gateway.fields import is_map, map_value_field

_T = FieldDescriptor
Schema = dict[str, Any]

_SCALARS: dict[int, Schema] = {
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    _T.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    # 64-bit integers are JSON numbers in this API (see transcode.py).
    _T.TYPE_INT64: {"type": "integer", "format": "int64"},
    _T.TYPE_SINT64: {"type": "integer", "format": "int64"},
    _T.TYPE_SFIXED64: {"type": "integer", "format": "int64"},
    _T.TYPE_UINT64: {"type": "integer", "minimum": 0, "maximum": 2**64 - 1},
    _T.TYPE_FIXED64: {"type": "integer", "minimum": 0, "maximum": 2**64 - 1},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_BOUNDS = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": {}},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {"$ref": "#/components/schemas/google.protobuf.Any"},
    "google.protobuf.DoubleValue": {"type": "number", "nullable": True},
    "google.protobuf.FloatValue": {"type": "number", "nullable": True},
    "google.protobuf.Int64Value": {"type": "integer", "format": "int64", "nullable": True},
    "google.protobuf.UInt64Value": {"type": "integer", "minimum": 0, "nullable": True},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32", "nullable": True},
    "google.protobuf.UInt32Value": {"type": "integer", "minimum": 0, "nullable": True},
    "google.protobuf.BoolValue": {"type": "boolean", "nullable": True},
    "google.protobuf.StringValue": {"type": "string", "nullable": True},
}


class SchemaBuilder:
    """Collects message schemas into components while operations reference them."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {
            "google.rpc.Status": {
                "type": "object",
                "description": "The error body: a google.rpc.Status with its details.",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "integer", "format": "int32"},
                    "message": {"type": "string"},
                    "details": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/google.protobuf.Any"},
                    },
                },
            },
            "google.protobuf.Any": {
                "type": "object",
                "required": ["@type"],
                "properties": {"@type": {"type": "string"}},
                "additionalProperties": {},
            },
        }

    def message_ref(self, desc: descriptor.Descriptor) -> Schema:
        """A $ref to the message's component schema (added on first use), or a WKT's schema."""
        if desc.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[desc.full_name])
        if desc.full_name not in self.schemas:
            self.schemas[desc.full_name] = {}  # placeholder first: messages may recurse
            self.schemas[desc.full_name] = self.message_schema(desc)
        return {"$ref": f"#/components/schemas/{desc.full_name}"}

    def message_schema(self, desc: descriptor.Descriptor, skip: Sequence[str] = ()) -> Schema:
        """An object schema of the message's fields (camelCase), leaving out `skip`."""
        properties = {
            field.json_name: self.field_schema(field)
            for field in desc.fields
            if field.name not in skip
        }
        return {
            "type": "object",
            "title": desc.name,
            "properties": properties,
            "additionalProperties": False,
        }

    def field_schema(self, field: FieldDescriptor) -> Schema:
        """The schema of a field: maps as objects, repeated fields as arrays."""
        if is_map(field):
            value = map_value_field(field)
            return {"type": "object", "additionalProperties": self.single_schema(value)}
        single = self.single_schema(field)
        if field.is_repeated:
            return {"type": "array", "items": single}
        return single

    def single_schema(self, field: FieldDescriptor) -> Schema:
        """The schema of one value of a field."""
        if field.message_type is not None:
            return self.message_ref(field.message_type)
        return scalar_schema(field)


def scalar_schema(field: FieldDescriptor) -> Schema:
    """The JSON schema of a scalar or enum field's single value."""
    if field.type == _T.TYPE_ENUM:
        assert field.enum_type is not None
        return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    schema = dict(_SCALARS[field.type])
    bounds = _BOUNDS.get(str(schema.get("format")))
    if bounds is not None:
        schema["minimum"], schema["maximum"] = bounds
    return schema


def text_param_schema(field: FieldDescriptor) -> Schema:
    """The schema of a field that is filled from one text value (path or query)."""
    if field.message_type is not None:
        return dict(_WELL_KNOWN.get(field.message_type.full_name, {"type": "string"}))
    return scalar_schema(field)
