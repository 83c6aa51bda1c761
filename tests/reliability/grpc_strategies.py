"""Hypothesis strategies for every RPC of CacheService, MarketDataService and SectorService.

Each strategy yields the request as wire bytes, so a case may also be a valid
message with unknown fields appended, a Value nested past protobuf's limit,
invalid UTF-8 in a string field, or plain random bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import message, struct_pb2
from hypothesis import strategies as st

from marketcache.v1 import cache_pb2, market_data_pb2, sector_pb2
from tests.reliability.fuzz_values import (
    DATES,
    INT32,
    INT64,
    KEYS,
    PLAUSIBLE_SECTORS,
    PREFIXES,
    SECTOR_DATA,
    SECTOR_SYMBOLS,
    SYMBOLS,
    VALUES,
    value_of,
)
from tests.reliability.wire import I32, I64, LEN, MAX_FIELD, VARINT, deep_value, field_bytes

Strategy = st.SearchStrategy


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
