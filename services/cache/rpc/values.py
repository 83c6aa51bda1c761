"""A request's JSON value as stored: checked (present, a kind set, finite), then serialized."""

from __future__ import annotations

import math
import re

from google.protobuf import struct_pb2

from services.common.errors import invalid_argument


def blob_of(value: struct_pb2.Value, present: bool, field: str) -> bytes:
    """The serialized `value`; INVALID_ARGUMENT naming `field` when it cannot be stored."""
    # An unset value is refused rather than stored as null: a forgotten field
    # must not silently cache a null over good data.
    if not present:
        raise invalid_argument(
            f"{field} is required: send any JSON value; to store JSON null send it "
            'explicitly ({"nullValue": "NULL_VALUE"} in protobuf JSON, null over REST)',
            field,
        )
    if value.WhichOneof("kind") is None:
        raise invalid_argument(
            f"{field} has no kind set: set one of null_value, number_value, string_value, "
            "bool_value, struct_value or list_value",
            field,
        )
    blob = value.SerializeToString()
    # The byte scan is cheap and rules out almost every value; only a hit walks the tree.
    if _NON_FINITE.search(blob) is not None and not _finite(value):
        raise invalid_argument(
            f"{field} holds NaN or an infinity: a value is JSON, and JSON numbers are finite",
            field,
        )
    return blob


# Value.number_value (field 2, fixed64: tag 0x11) with all 11 exponent bits set, which
# little-endian puts in the last two bytes: NaN or an infinity (or bytes inside a string).
_NON_FINITE = re.compile(rb"\x11[\x00-\xff]{6}[\xf0-\xff][\x7f\xff]")


def _finite(value: struct_pb2.Value) -> bool:
    """Whether every number in `value` is finite (else no REST client could read it back)."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = item.WhichOneof("kind")
        if kind == "number_value":
            if not math.isfinite(item.number_value):
                return False
        elif kind == "list_value":
            pending.extend(item.list_value.values)
        elif kind == "struct_value":
            pending.extend(item.struct_value.fields.values())
    return True
