"""Converting between Python JSON values and google.protobuf.Value."""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf import json_format, struct_pb2

JSON = Any  # None | bool | int | float | str | list[JSON] | dict[str, JSON]


def to_value(obj: JSON) -> struct_pb2.Value:
    """Build a Value from any JSON-serializable Python object.

    Raises TypeError for values JSON cannot carry (sets, bytes, NaN, objects).
    """
    # json.dumps is the arbiter of "JSON-serializable", as in the seed.
    try:
        text = json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"value is not JSON-serializable: {exc}") from None
    value = struct_pb2.Value()
    json_format.Parse(text, value)
    return value


def from_value(value: struct_pb2.Value) -> JSON:
    """Turn a Value back into plain Python (dict, list, str, float, bool, None)."""
    result = json_format.MessageToDict(value)
    return _ints_back(result)


def _ints_back(obj: JSON) -> JSON:
    # Value stores every number as a double; integral floats come back as int so
    # that a round trip of {"volume": 100} gives 100, not 100.0.
    if isinstance(obj, float) and obj.is_integer() and math.isfinite(obj) and abs(obj) < 2**53:
        return int(obj)
    if isinstance(obj, list):
        return [_ints_back(item) for item in obj]
    if isinstance(obj, dict):
        return {key: _ints_back(item) for key, item in obj.items()}
    return obj
