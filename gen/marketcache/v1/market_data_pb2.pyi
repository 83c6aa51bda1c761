import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Provenance(_message.Message):
    __slots__ = ("provider", "cached", "age_seconds", "stale", "fresh_for_seconds", "session", "freshness_reason", "refresh")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    FRESH_FOR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    FRESHNESS_REASON_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    provider: str
    cached: bool
    age_seconds: float
    stale: bool
    fresh_for_seconds: float
    session: str
    freshness_reason: str
    refresh: str
    def __init__(self, provider: _Optional[str] = ..., cached: _Optional[bool] = ..., age_seconds: _Optional[float] = ..., stale: _Optional[bool] = ..., fresh_for_seconds: _Optional[float] = ..., session: _Optional[str] = ..., freshness_reason: _Optional[str] = ..., refresh: _Optional[str] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("symbol", "name", "price", "change", "change_percent", "open", "day_high", "day_low", "previous_close", "volume", "timestamp")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    DAY_HIGH_FIELD_NUMBER: _ClassVar[int]
    DAY_LOW_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    name: str
    price: float
    change: float
    change_percent: float
    open: float
    day_high: float
    day_low: float
    previous_close: float
    volume: int
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, symbol: _Optional[str] = ..., name: _Optional[str] = ..., price: _Optional[float] = ..., change: _Optional[float] = ..., change_percent: _Optional[float] = ..., open: _Optional[float] = ..., day_high: _Optional[float] = ..., day_low: _Optional[float] = ..., previous_close: _Optional[float] = ..., volume: _Optional[int] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetQuoteRequest(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class GetQuoteResponse(_message.Message):
    __slots__ = ("quote", "provenance")
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    quote: Quote
    provenance: Provenance
    def __init__(self, quote: _Optional[_Union[Quote, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ...) -> None: ...

class GetQuotesRequest(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class QuoteResult(_message.Message):
    __slots__ = ("symbol", "quote", "provenance", "error_code", "error_message")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quote: Quote
    provenance: Provenance
    error_code: str
    error_message: str
    def __init__(self, symbol: _Optional[str] = ..., quote: _Optional[_Union[Quote, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class GetQuotesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[QuoteResult]
    def __init__(self, results: _Optional[_Iterable[_Union[QuoteResult, _Mapping]]] = ...) -> None: ...

class Bar(_message.Message):
    __slots__ = ("date", "open", "high", "low", "close", "volume")
    DATE_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    date: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    def __init__(self, date: _Optional[str] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[int] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("symbol", "days")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    days: int
    def __init__(self, symbol: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("symbol", "bars", "provenance")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    bars: _containers.RepeatedCompositeFieldContainer[Bar]
    provenance: Provenance
    def __init__(self, symbol: _Optional[str] = ..., bars: _Optional[_Iterable[_Union[Bar, _Mapping]]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ...) -> None: ...

class Article(_message.Message):
    __slots__ = ("title", "source", "url", "published_at", "summary")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    title: str
    source: str
    url: str
    published_at: _timestamp_pb2.Timestamp
    summary: str
    def __init__(self, title: _Optional[str] = ..., source: _Optional[str] = ..., url: _Optional[str] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., summary: _Optional[str] = ...) -> None: ...

class GetNewsRequest(_message.Message):
    __slots__ = ("symbol", "date", "limit")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    date: str
    limit: int
    def __init__(self, symbol: _Optional[str] = ..., date: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class GetNewsResponse(_message.Message):
    __slots__ = ("symbol", "date", "articles", "provenance")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    ARTICLES_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    date: str
    articles: _containers.RepeatedCompositeFieldContainer[Article]
    provenance: Provenance
    def __init__(self, symbol: _Optional[str] = ..., date: _Optional[str] = ..., articles: _Optional[_Iterable[_Union[Article, _Mapping]]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ...) -> None: ...
