"""Hypothesis strategies for every RPC of CacheService, MarketDataService and SectorService.

Each strategy yields the request as wire bytes, so a case may also be a valid
message with unknown fields appended, a Value nested past protobuf's limit,
invalid UTF-8 in a string field, or plain random bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import message, struct_pb2, timestamp_pb2
from hypothesis import strategies as st

from marketcache.v1 import cache_pb2, market_data_pb2, sector_pb2
from tests.reliability.wire import I32, I64, LEN, MAX_FIELD, VARINT, deep_value, field_bytes

Strategy = st.SearchStrategy

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


def _set(key: str, value: struct_pb2.Value | None, ttl: int) -> cache_pb2.SetRequest:
    request = cache_pb2.SetRequest(key=key, ttl_seconds=ttl)
    if value is not None:
        request.value.CopyFrom(value)
    return request


def _item(key: str, value: struct_pb2.Value | None, ttl: int) -> cache_pb2.MSetItem:
    item = cache_pb2.MSetItem(key=key, ttl_seconds=ttl)
    if value is not None:
        item.value.CopyFrom(value)
    return item


def _many_keys(count: int) -> list[str]:
    return [f"fz:many{i}" for i in range(count)]


KEY_LISTS = st.one_of(st.lists(KEYS, max_size=12), st.integers(995, 1005).map(_many_keys))
MSET_ITEMS = st.one_of(
    st.lists(st.builds(_item, KEYS, VALUES, INT64), max_size=8),
    st.integers(995, 1005).map(
        lambda n: [_item(k, value_of(1), 60) for k in _many_keys(n)]  # batch-size boundary
    ),
)

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


@dataclass(frozen=True)
class RpcCase:
    """One RPC to fuzz: its path, response type and a strategy of well-formed requests."""

    service: str
    method: str
    response: type[message.Message]
    requests: Strategy[message.Message]
    # An extra strategy of raw request bytes the message classes cannot build.
    raw: Strategy[bytes] | None = None

    @property
    def path(self) -> str:
        return f"/marketcache.v1.{self.service}/{self.method}"


def _empty(cls: Callable[[], message.Message]) -> Strategy[message.Message]:
    return st.just(cls())


def _deep_set(depth: int) -> bytes:
    return field_bytes(1, LEN, f"fz:deep{depth}".encode()) + field_bytes(2, LEN, deep_value(depth))


def _bad_utf8_key(junk: bytes) -> bytes:
    return field_bytes(1, LEN, b"fz:" + junk + b"\xff\xfe")


DEEP_SET = st.integers(30, 300).map(_deep_set)
BAD_UTF8_KEY = st.binary(max_size=8).map(_bad_utf8_key)

CACHE_RPCS = (
    RpcCase(
        "CacheService",
        "Get",
        cache_pb2.GetResponse,
        st.builds(cache_pb2.GetRequest, key=KEYS),
        BAD_UTF8_KEY,
    ),
    RpcCase(
        "CacheService",
        "Set",
        cache_pb2.SetResponse,
        st.builds(_set, KEYS, VALUES, INT64),
        st.one_of(DEEP_SET, BAD_UTF8_KEY),
    ),
    RpcCase(
        "CacheService",
        "Delete",
        cache_pb2.DeleteResponse,
        st.builds(cache_pb2.DeleteRequest, key=KEYS),
        BAD_UTF8_KEY,
    ),
    RpcCase(
        "CacheService",
        "MGet",
        cache_pb2.MGetResponse,
        st.builds(cache_pb2.MGetRequest, keys=KEY_LISTS),
    ),
    RpcCase(
        "CacheService",
        "MSet",
        cache_pb2.MSetResponse,
        st.builds(cache_pb2.MSetRequest, items=MSET_ITEMS),
        DEEP_SET.map(lambda item: field_bytes(1, LEN, item)),
    ),
    RpcCase(
        "CacheService",
        "Clear",
        cache_pb2.ClearResponse,
        st.builds(cache_pb2.ClearRequest, prefix=PREFIXES),
    ),
    RpcCase("CacheService", "Health", cache_pb2.HealthResponse, _empty(cache_pb2.HealthRequest)),
    RpcCase(
        "CacheService",
        "GetMetrics",
        cache_pb2.GetMetricsResponse,
        _empty(cache_pb2.GetMetricsRequest),
    ),
    RpcCase(
        "CacheService",
        "GetOwnership",
        cache_pb2.GetOwnershipResponse,
        st.builds(cache_pb2.GetOwnershipRequest, prefix=st.one_of(PREFIXES, KEYS)),
    ),
    RpcCase(
        "CacheService",
        "ListOwners",
        cache_pb2.ListOwnersResponse,
        _empty(cache_pb2.ListOwnersRequest),
    ),
)

MARKET_RPCS = (
    RpcCase(
        "MarketDataService",
        "GetQuote",
        market_data_pb2.GetQuoteResponse,
        st.builds(market_data_pb2.GetQuoteRequest, symbol=SYMBOLS),
        BAD_UTF8_KEY,
    ),
    RpcCase(
        "MarketDataService",
        "GetQuotes",
        market_data_pb2.GetQuotesResponse,
        st.builds(
            market_data_pb2.GetQuotesRequest,
            symbols=st.one_of(
                st.lists(SYMBOLS, max_size=8),
                st.integers(95, 105).map(lambda n: [f"S{i}" for i in range(n)]),
                st.lists(SYMBOLS, max_size=4).map(lambda s: [",".join(s)]),
            ),
        ),
    ),
    RpcCase(
        "MarketDataService",
        "GetHistory",
        market_data_pb2.GetHistoryResponse,
        st.builds(market_data_pb2.GetHistoryRequest, symbol=SYMBOLS, days=INT32),
    ),
    RpcCase(
        "MarketDataService",
        "GetNews",
        market_data_pb2.GetNewsResponse,
        st.builds(market_data_pb2.GetNewsRequest, symbol=SYMBOLS, date=DATES, limit=INT32),
    ),
)

SECTOR_RPCS = (
    RpcCase(
        "SectorService",
        "ListSectors",
        sector_pb2.ListSectorsResponse,
        _empty(sector_pb2.ListSectorsRequest),
    ),
    RpcCase(
        "SectorService",
        "GetSectorSnapshot",
        sector_pb2.GetSectorSnapshotResponse,
        _empty(sector_pb2.GetSectorSnapshotRequest),
    ),
    RpcCase(
        "SectorService",
        "GetCacheStats",
        sector_pb2.GetCacheStatsResponse,
        _empty(sector_pb2.GetCacheStatsRequest),
    ),
    RpcCase(
        "SectorService",
        "WarmCache",
        sector_pb2.WarmCacheResponse,
        st.builds(sector_pb2.WarmCacheRequest, symbols=st.lists(SECTOR_SYMBOLS, max_size=4)),
    ),
    RpcCase(
        "SectorService",
        "ClearAllCaches",
        sector_pb2.ClearAllCachesResponse,
        _empty(sector_pb2.ClearAllCachesRequest),
    ),
    RpcCase(
        "SectorService",
        "SetBatchSectorData",
        sector_pb2.SetBatchSectorDataResponse,
        st.one_of(
            st.builds(
                sector_pb2.SetBatchSectorDataRequest,
                sectors=st.lists(SECTOR_DATA, max_size=3),
                ttl_seconds=INT64,
            ),
            st.builds(
                sector_pb2.SetBatchSectorDataRequest,
                sectors=PLAUSIBLE_SECTORS,
                ttl_seconds=st.integers(0, 3600),
            ),
        ),
    ),
    RpcCase(
        "SectorService",
        "GetSectorData",
        sector_pb2.GetSectorDataResponse,
        st.builds(sector_pb2.GetSectorDataRequest, symbol=SECTOR_SYMBOLS),
        BAD_UTF8_KEY,
    ),
)

# Fields numbered past every message's own (1..12), of every wire type.
UNKNOWN_FIELDS = st.lists(
    st.one_of(
        st.builds(field_bytes, st.integers(13, MAX_FIELD), st.just(VARINT), INT64),
        st.builds(field_bytes, st.integers(13, MAX_FIELD), st.just(I64), INT64),
        st.builds(field_bytes, st.integers(13, MAX_FIELD), st.just(I32), INT32),
        st.builds(field_bytes, st.integers(13, MAX_FIELD), st.just(LEN), st.binary(max_size=40)),
    ),
    min_size=1,
    max_size=4,
).map(b"".join)


def payloads(case: RpcCase) -> Strategy[bytes]:
    """Wire bytes for `case`: well-formed, with unknown fields, hand-built, or random."""
    encoded = case.requests.map(lambda m: m.SerializeToString())
    options = [
        encoded,
        encoded,  # weight: most cases are well-formed requests
        st.builds(lambda body, extra: body + extra, encoded, UNKNOWN_FIELDS),
        st.binary(max_size=64),
    ]
    if case.raw is not None:
        options.append(case.raw)
    return st.one_of(*options)
