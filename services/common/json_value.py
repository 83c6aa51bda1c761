"""Converting between Python JSON values and google.protobuf.Value."""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf import struct_pb2

JSON = Any  # None | bool | int | float | str | list[JSON] | dict[str, JSON]

# protobuf refuses to parse messages nested deeper than 100; a Value level is two
# messages deep (Value -> Struct/ListValue), so this keeps every value we build parseable.
MAX_DEPTH = 48
_EXACT_INT = 2**53


def to_value(obj: JSON) -> struct_pb2.Value:
    """Build a Value from any JSON-serializable Python object.

    Raises TypeError for values JSON cannot carry (sets, bytes, NaN, objects).
    """
    value = struct_pb2.Value()
    try:
        _fill(value, obj, 0)
    except _NotJsonError as exc:
        raise TypeError(f"value is not JSON-serializable: {exc}") from None
    return value


def from_value(value: struct_pb2.Value) -> JSON:
    """Turn a Value back into plain Python (dict, list, str, int, float, bool, None).

    Value stores every number as a double; integral ones come back as int, so a
    round trip of {"volume": 100} gives 100, not 100.0.
    """
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {key: from_value(item) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [from_value(item) for item in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < _EXACT_INT else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


class _NotJsonError(Exception):
    pass


def _fill(out: struct_pb2.Value, obj: JSON, depth: int) -> None:
    # Written by hand rather than json.dumps + json_format.Parse: every cached read
    # and write goes through here, and this is about three times faster.
    if obj is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif obj is True or obj is False:
        out.bool_value = obj
    elif isinstance(obj, str):
        out.string_value = obj
    elif isinstance(obj, int | float):
        number = float(obj) if isinstance(obj, float) else _int_as_double(obj)
        if not math.isfinite(number):
            raise _NotJsonError(f"Out of range float values are not JSON compliant: {obj!r}")
        out.number_value = number
    elif isinstance(obj, dict | list | tuple):
        if depth >= MAX_DEPTH:
            raise _NotJsonError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(obj, dict):
            fields = out.struct_value.fields
            out.struct_value.SetInParent()
            for key, item in obj.items():
                _fill(fields[_key(key)], item, depth + 1)
        else:
            values = out.list_value.values
            out.list_value.SetInParent()
            for item in obj:
                _fill(values.add(), item, depth + 1)
    else:
        raise _NotJsonError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _int_as_double(number: int) -> float:
    try:
        return float(number)
    except OverflowError:
        raise _NotJsonError(f"integer {number} is too large for a JSON number") from None


def _key(key: object) -> str:
    # The keys json.dumps accepts, spelled as it spells them.
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    raise _NotJsonError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
