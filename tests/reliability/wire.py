"""Protobuf wire-format bytes built by hand: unknown fields, deep values, bad UTF-8.

The generated classes refuse to build some of these (a Value nested past the
recursion limit, a string that is not UTF-8), so the fuzzers send raw bytes.
"""

from __future__ import annotations

import struct

VARINT, I64, LEN, I32 = 0, 1, 2, 5
# The largest field number protobuf allows.
MAX_FIELD = (1 << 29) - 1


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer (negative int64s as their 2^64 complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def field_bytes(field: int, wire_type: int, payload: int | bytes) -> bytes:
    """One encoded field: a varint, a fixed 64/32-bit number, or length-delimited bytes."""
    if wire_type == VARINT:
        assert isinstance(payload, int)
        return tag(field, VARINT) + varint(payload)
    if wire_type == I64:
        assert isinstance(payload, int)
        return tag(field, I64) + struct.pack("<Q", payload & ((1 << 64) - 1))
    if wire_type == I32:
        assert isinstance(payload, int)
        return tag(field, I32) + struct.pack("<I", payload & 0xFFFFFFFF)
    assert isinstance(payload, bytes)
    return tag(field, LEN) + varint(len(payload)) + payload


def deep_value(depth: int) -> bytes:
    """A google.protobuf.Value: `depth` lists nested around the number 1."""
    value = field_bytes(2, I64, struct.unpack("<Q", struct.pack("<d", 1.0))[0])
    for _ in range(depth):
        list_value = field_bytes(1, LEN, value)  # ListValue.values
        value = field_bytes(6, LEN, list_value)  # Value.list_value
    return value
