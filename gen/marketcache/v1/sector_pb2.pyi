import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SectorInfo(_message.Message):
    __slots__ = ("symbol", "name")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    name: str
    def __init__(self, symbol: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListSectorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSectorsResponse(_message.Message):
    __slots__ = ("sectors", "benchmark")
    SECTORS_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    sectors: _containers.RepeatedCompositeFieldContainer[SectorInfo]
    benchmark: SectorInfo
    def __init__(self, sectors: _Optional[_Iterable[_Union[SectorInfo, _Mapping]]] = ..., benchmark: _Optional[_Union[SectorInfo, _Mapping]] = ...) -> None: ...

class Performance(_message.Message):
    __slots__ = ("day_1", "day_5", "month_1", "month_3", "ytd")
    DAY_1_FIELD_NUMBER: _ClassVar[int]
    DAY_5_FIELD_NUMBER: _ClassVar[int]
    MONTH_1_FIELD_NUMBER: _ClassVar[int]
    MONTH_3_FIELD_NUMBER: _ClassVar[int]
    YTD_FIELD_NUMBER: _ClassVar[int]
    day_1: float
    day_5: float
    month_1: float
    month_3: float
    ytd: float
    def __init__(self, day_1: _Optional[float] = ..., day_5: _Optional[float] = ..., month_1: _Optional[float] = ..., month_3: _Optional[float] = ..., ytd: _Optional[float] = ...) -> None: ...

class SectorData(_message.Message):
    __slots__ = ("symbol", "name", "price", "change", "change_percent", "volume", "performance", "relative_strength", "trend", "rank", "as_of")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    PERFORMANCE_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    TREND_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    name: str
    price: float
    change: float
    change_percent: float
    volume: int
    performance: Performance
    relative_strength: Performance
    trend: str
    rank: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, symbol: _Optional[str] = ..., name: _Optional[str] = ..., price: _Optional[float] = ..., change: _Optional[float] = ..., change_percent: _Optional[float] = ..., volume: _Optional[int] = ..., performance: _Optional[_Union[Performance, _Mapping]] = ..., relative_strength: _Optional[_Union[Performance, _Mapping]] = ..., trend: _Optional[str] = ..., rank: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CacheInfo(_message.Message):
    __slots__ = ("cached", "age_seconds", "enabled", "fresh_for_seconds", "session", "freshness_reason")
    CACHED_FIELD_NUMBER: _ClassVar[int]
    AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    FRESH_FOR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    FRESHNESS_REASON_FIELD_NUMBER: _ClassVar[int]
    cached: bool
    age_seconds: float
    enabled: bool
    fresh_for_seconds: float
    session: str
    freshness_reason: str
    def __init__(self, cached: _Optional[bool] = ..., age_seconds: _Optional[float] = ..., enabled: _Optional[bool] = ..., fresh_for_seconds: _Optional[float] = ..., session: _Optional[str] = ..., freshness_reason: _Optional[str] = ...) -> None: ...

class GetSectorDataRequest(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class GetSectorDataResponse(_message.Message):
    __slots__ = ("sector", "cache")
    SECTOR_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    sector: SectorData
    cache: CacheInfo
    def __init__(self, sector: _Optional[_Union[SectorData, _Mapping]] = ..., cache: _Optional[_Union[CacheInfo, _Mapping]] = ...) -> None: ...

class GetSectorSnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSectorSnapshotResponse(_message.Message):
    __slots__ = ("sectors", "benchmark", "ranking", "top_performers", "bottom_performers", "as_of", "cache")
    SECTORS_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    TOP_PERFORMERS_FIELD_NUMBER: _ClassVar[int]
    BOTTOM_PERFORMERS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    sectors: _containers.RepeatedCompositeFieldContainer[SectorData]
    benchmark: SectorData
    ranking: _containers.RepeatedScalarFieldContainer[str]
    top_performers: _containers.RepeatedScalarFieldContainer[str]
    bottom_performers: _containers.RepeatedScalarFieldContainer[str]
    as_of: _timestamp_pb2.Timestamp
    cache: CacheInfo
    def __init__(self, sectors: _Optional[_Iterable[_Union[SectorData, _Mapping]]] = ..., benchmark: _Optional[_Union[SectorData, _Mapping]] = ..., ranking: _Optional[_Iterable[str]] = ..., top_performers: _Optional[_Iterable[str]] = ..., bottom_performers: _Optional[_Iterable[str]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cache: _Optional[_Union[CacheInfo, _Mapping]] = ...) -> None: ...

class NamespaceStats(_message.Message):
    __slots__ = ("namespace", "hits", "misses", "hit_rate", "keys")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    hits: int
    misses: int
    hit_rate: float
    keys: int
    def __init__(self, namespace: _Optional[str] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., hit_rate: _Optional[float] = ..., keys: _Optional[int] = ...) -> None: ...

class GetCacheStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCacheStatsResponse(_message.Message):
    __slots__ = ("namespaces", "hits", "misses", "hit_rate", "enabled", "status")
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    namespaces: _containers.RepeatedCompositeFieldContainer[NamespaceStats]
    hits: int
    misses: int
    hit_rate: float
    enabled: bool
    status: str
    def __init__(self, namespaces: _Optional[_Iterable[_Union[NamespaceStats, _Mapping]]] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., hit_rate: _Optional[float] = ..., enabled: _Optional[bool] = ..., status: _Optional[str] = ...) -> None: ...

class WarmCacheRequest(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class WarmCacheResponse(_message.Message):
    __slots__ = ("warmed", "symbols", "snapshot")
    WARMED_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    warmed: int
    symbols: _containers.RepeatedScalarFieldContainer[str]
    snapshot: bool
    def __init__(self, warmed: _Optional[int] = ..., symbols: _Optional[_Iterable[str]] = ..., snapshot: _Optional[bool] = ...) -> None: ...

class ClearAllCachesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClearAllCachesResponse(_message.Message):
    __slots__ = ("deleted", "namespaces")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    namespaces: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted: _Optional[int] = ..., namespaces: _Optional[_Iterable[str]] = ...) -> None: ...

class SetBatchSectorDataRequest(_message.Message):
    __slots__ = ("sectors", "ttl_seconds")
    SECTORS_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    sectors: _containers.RepeatedCompositeFieldContainer[SectorData]
    ttl_seconds: int
    def __init__(self, sectors: _Optional[_Iterable[_Union[SectorData, _Mapping]]] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class SetBatchSectorDataResponse(_message.Message):
    __slots__ = ("written",)
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    written: int
    def __init__(self, written: _Optional[int] = ...) -> None: ...
