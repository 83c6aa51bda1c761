"""Field-level hypothesis strategies for the gRPC fuzzers: numbers, keys, JSON values, symbols.

Odd values are mixed in on purpose (NaN, infinities, lone control characters,
lengths around limits); the request-level strategies are in grpc_strategies.py.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2
from hypothesis import strategies as st

from marketcache.v1 import sector_pb2

INT64 = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 1, 59, 60, 3600, 2_592_000, 2_592_001, 2**31, 2**63 - 1, -(2**63)]),
)
INT32 = st.one_of(
    st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 30, 100, 101, 365, 366])
)
FINITE = st.floats(-1e6, 1e6)
# Mostly ordinary numbers, so a request gets past its first bad field now and then.
DOUBLES = st.one_of(
    FINITE,
    FINITE,
    FINITE,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan]),
)

# Keys of every shape: valid ones, no prefix, empty parts, white space, control
# characters, any Unicode, and lengths around the 256-byte limit.
_SEGMENT = st.text(
    st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters=":"), max_size=12
)
KEYS = st.one_of(
    st.builds(lambda p, r: f"{p}:{r}", _SEGMENT, _SEGMENT),
    st.text(max_size=40),
    st.text(st.characters(codec="ascii"), min_size=250, max_size=262).map(lambda t: f"fz:{t}"),
    st.integers(240, 270).map(lambda n: "fz:" + "é" * (n // 2)),
    st.sampled_from(["", ":", "fz:", ":x", "fz: x", "fz:\x00", "fz:\n", "fz:a:b:c", "fz:ok"]),
)
PREFIXES = st.one_of(_SEGMENT, st.text(max_size=20), st.sampled_from(["", "fz", "fz:x", ":"]))


def _nest(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


# JSON values of every type, depth and size.
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
JSON_VALUES = st.one_of(
    st.recursive(
        _LEAVES,
        lambda inner: st.one_of(
            st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=6)
        ),
        max_leaves=40,
    ),
    st.integers(1, 30).map(_nest),
    st.sampled_from([1_000, 500_000, 1_048_500, 1_048_600, 1_200_000]).map(lambda n: "x" * n),
)


def value_of(obj: Any) -> struct_pb2.Value:
    """A Value built field by field (json_format would refuse deep nesting client-side)."""
    value = struct_pb2.Value()
    if obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, int | float):
        value.number_value = float(obj)
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, list):
        value.list_value.SetInParent()
        for item in obj:
            value.list_value.values.append(value_of(item))
    else:
        value.struct_value.SetInParent()
        for key, item in obj.items():
            value.struct_value.fields[key].CopyFrom(value_of(item))
    return value


# Values JSON cannot carry (NaN, infinities), a Value with no kind, or none at all.
ODD_VALUES = st.sampled_from(
    [
        struct_pb2.Value(number_value=math.nan),
        struct_pb2.Value(number_value=math.inf),
        struct_pb2.Value(),
        None,
    ]
)
VALUES = st.one_of(JSON_VALUES.map(value_of), ODD_VALUES)


SYMBOLS = st.one_of(
    st.from_regex(r"[A-Za-z0-9.\-^]{1,10}", fullmatch=True),
    st.sampled_from(
        ["AAPL", "XLK", "SPY", "XLRE", "^GSPC", "BRK.B", "", " ", "aapl", "ZZZZZZZZZZ"]
    ),
    st.text(max_size=30),
)
SECTOR_SYMBOLS = st.one_of(
    st.sampled_from(["XLB", "XLC", "XLE", "XLF", "XLI", "XLK", "XLP", "XLRE", "XLU", "XLV", "XLY"]),
    st.sampled_from(["SPY", "xlk", " XLK ", "", "AAPL"]),
    SYMBOLS,
)
DATES = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["", "2025-01-15", "2025-02-30", "9999-12-31", "0001-01-01", "yesterday"]),
    st.text(max_size=20),
)


def _timestamp(seconds: int, nanos: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


TIMESTAMPS = st.one_of(
    st.builds(_timestamp, st.integers(0, 2_000_000_000), st.integers(0, 999_999_999)),
    st.builds(_timestamp, INT64, st.integers(-(2**31), 2**31 - 1)),
    st.sampled_from(
        [(253_402_300_799, 0), (253_402_300_800, 0), (-62_135_596_801, 0), (0, -1)]
    ).map(lambda t: _timestamp(*t)),
)
# A sector carries a dozen numbers: each is rarely odd, so some whole records are valid.
SECTOR_DOUBLES = st.one_of(*([FINITE] * 12), DOUBLES)
PERFORMANCE = st.builds(
    sector_pb2.Performance,
    day_1=SECTOR_DOUBLES,
    day_5=SECTOR_DOUBLES,
    month_1=SECTOR_DOUBLES,
    month_3=SECTOR_DOUBLES,
    ytd=SECTOR_DOUBLES,
)


def _sector(
    symbol: str, price: float, timestamp: timestamp_pb2.Timestamp | None, **fields: Any
) -> Any:
    data = sector_pb2.SectorData(symbol=symbol, price=price, **fields)
    if timestamp is not None:
        data.as_of.CopyFrom(timestamp)
    return data


SECTOR_DATA = st.builds(
    _sector,
    st.one_of(st.sampled_from(["XLK", "XLE", "XLF", "XLV"]), SECTOR_SYMBOLS),
    st.one_of(DOUBLES, st.floats(1.0, 1000.0)),
    st.one_of(st.none(), TIMESTAMPS),
    name=st.text(max_size=20),
    change=SECTOR_DOUBLES,
    change_percent=SECTOR_DOUBLES,
    volume=st.one_of(st.integers(0, 10**9), INT64),
    performance=PERFORMANCE,
    relative_strength=PERFORMANCE,
    trend=st.one_of(
        st.sampled_from(["", "uptrend", "neutral", "strong-downtrend"]),
        st.sampled_from(["sideways", "UPTREND"]),
        st.text(max_size=10),
    ),
    rank=INT32,
)


# Records valid in every field but the timestamp (in range or not) and the free-form name.
PLAUSIBLE_SECTORS = st.lists(
    st.builds(
        _sector,
        st.sampled_from(["XLK", "XLE", "XLF", "XLV", "XLU"]),
        st.floats(0.01, 1e6),
        st.one_of(st.none(), TIMESTAMPS),
        name=st.text(max_size=20),
        change=FINITE,
        change_percent=FINITE,
        volume=st.integers(0, 10**12),
        performance=st.builds(sector_pb2.Performance, day_1=FINITE, ytd=FINITE),
        trend=st.sampled_from(["", "uptrend", "strong-downtrend"]),
        rank=INT32,
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda data: data.symbol,
)
