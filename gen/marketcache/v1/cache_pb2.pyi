from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("key", "found", "value", "ttl_remaining_seconds", "position")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_REMAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    key: str
    found: bool
    value: _struct_pb2.Value
    ttl_remaining_seconds: int
    position: Position
    def __init__(self, key: _Optional[str] = ..., found: _Optional[bool] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., ttl_remaining_seconds: _Optional[int] = ..., position: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class SetRequest(_message.Message):
    __slots__ = ("key", "value", "ttl_seconds")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _struct_pb2.Value
    ttl_seconds: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class SetResponse(_message.Message):
    __slots__ = ("key", "ttl_seconds", "position")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    key: str
    ttl_seconds: int
    position: Position
    def __init__(self, key: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., position: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("key", "deleted", "position")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    key: str
    deleted: bool
    position: Position
    def __init__(self, key: _Optional[str] = ..., deleted: _Optional[bool] = ..., position: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class MGetRequest(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, keys: _Optional[_Iterable[str]] = ...) -> None: ...

class MGetResult(_message.Message):
    __slots__ = ("key", "found", "value", "ttl_remaining_seconds", "position")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_REMAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    key: str
    found: bool
    value: _struct_pb2.Value
    ttl_remaining_seconds: int
    position: Position
    def __init__(self, key: _Optional[str] = ..., found: _Optional[bool] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., ttl_remaining_seconds: _Optional[int] = ..., position: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class MGetResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[MGetResult]
    def __init__(self, results: _Optional[_Iterable[_Union[MGetResult, _Mapping]]] = ...) -> None: ...

class MSetItem(_message.Message):
    __slots__ = ("key", "value", "ttl_seconds")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _struct_pb2.Value
    ttl_seconds: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class MSetRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[MSetItem]
    def __init__(self, items: _Optional[_Iterable[_Union[MSetItem, _Mapping]]] = ...) -> None: ...

class MSetResponse(_message.Message):
    __slots__ = ("written", "positions")
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    written: int
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    def __init__(self, written: _Optional[int] = ..., positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ...) -> None: ...

class ClearRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class ClearResponse(_message.Message):
    __slots__ = ("prefix", "deleted", "position")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    deleted: int
    position: Position
    def __init__(self, prefix: _Optional[str] = ..., deleted: _Optional[int] = ..., position: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("status", "enabled", "hit_rate", "metrics", "reason", "node_id")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    status: str
    enabled: bool
    hit_rate: float
    metrics: CacheMetrics
    reason: str
    node_id: str
    def __init__(self, status: _Optional[str] = ..., enabled: _Optional[bool] = ..., hit_rate: _Optional[float] = ..., metrics: _Optional[_Union[CacheMetrics, _Mapping]] = ..., reason: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PrefixMetrics(_message.Message):
    __slots__ = ("prefix", "hits", "misses", "hit_rate", "keys", "memory_bytes")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    hits: int
    misses: int
    hit_rate: float
    keys: int
    memory_bytes: int
    def __init__(self, prefix: _Optional[str] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., hit_rate: _Optional[float] = ..., keys: _Optional[int] = ..., memory_bytes: _Optional[int] = ...) -> None: ...

class CacheMetrics(_message.Message):
    __slots__ = ("hits", "misses", "hit_rate", "keys", "memory_bytes", "max_memory_bytes", "evictions", "expired", "sets", "deletes", "commits", "prefixes")
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    SETS_FIELD_NUMBER: _ClassVar[int]
    DELETES_FIELD_NUMBER: _ClassVar[int]
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    hits: int
    misses: int
    hit_rate: float
    keys: int
    memory_bytes: int
    max_memory_bytes: int
    evictions: int
    expired: int
    sets: int
    deletes: int
    commits: int
    prefixes: _containers.RepeatedCompositeFieldContainer[PrefixMetrics]
    def __init__(self, hits: _Optional[int] = ..., misses: _Optional[int] = ..., hit_rate: _Optional[float] = ..., keys: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., max_memory_bytes: _Optional[int] = ..., evictions: _Optional[int] = ..., expired: _Optional[int] = ..., sets: _Optional[int] = ..., deletes: _Optional[int] = ..., commits: _Optional[int] = ..., prefixes: _Optional[_Iterable[_Union[PrefixMetrics, _Mapping]]] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ("hits", "misses", "hit_rate", "keys", "memory_bytes", "metrics")
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    hits: int
    misses: int
    hit_rate: float
    keys: int
    memory_bytes: int
    metrics: CacheMetrics
    def __init__(self, hits: _Optional[int] = ..., misses: _Optional[int] = ..., hit_rate: _Optional[float] = ..., keys: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., metrics: _Optional[_Union[CacheMetrics, _Mapping]] = ...) -> None: ...

class GetOwnershipRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class Owner(_message.Message):
    __slots__ = ("prefix", "node_id", "address", "epoch", "expires_at")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    node_id: str
    address: str
    epoch: int
    expires_at: float
    def __init__(self, prefix: _Optional[str] = ..., node_id: _Optional[str] = ..., address: _Optional[str] = ..., epoch: _Optional[int] = ..., expires_at: _Optional[float] = ...) -> None: ...

class GetOwnershipResponse(_message.Message):
    __slots__ = ("owner",)
    OWNER_FIELD_NUMBER: _ClassVar[int]
    owner: Owner
    def __init__(self, owner: _Optional[_Union[Owner, _Mapping]] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("node_id", "address", "heartbeat_at", "alive")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    heartbeat_at: float
    alive: bool
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., heartbeat_at: _Optional[float] = ..., alive: _Optional[bool] = ...) -> None: ...

class ListOwnersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListOwnersResponse(_message.Message):
    __slots__ = ("members", "owners")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    OWNERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    owners: _containers.RepeatedCompositeFieldContainer[Owner]
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., owners: _Optional[_Iterable[_Union[Owner, _Mapping]]] = ...) -> None: ...

class OwnerRedirect(_message.Message):
    __slots__ = ("prefix", "node_id", "address", "epoch")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    node_id: str
    address: str
    epoch: int
    def __init__(self, prefix: _Optional[str] = ..., node_id: _Optional[str] = ..., address: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("prefix", "epoch", "sequence")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    epoch: int
    sequence: int
    def __init__(self, prefix: _Optional[str] = ..., epoch: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class WriteOp(_message.Message):
    __slots__ = ("key", "set", "delete")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    key: str
    set: SetOp
    delete: DeleteOp
    def __init__(self, key: _Optional[str] = ..., set: _Optional[_Union[SetOp, _Mapping]] = ..., delete: _Optional[_Union[DeleteOp, _Mapping]] = ...) -> None: ...

class SetOp(_message.Message):
    __slots__ = ("value", "ttl_seconds")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    value: _struct_pb2.Value
    ttl_seconds: int
    def __init__(self, value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class DeleteOp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WriteBatchRequest(_message.Message):
    __slots__ = ("ops",)
    OPS_FIELD_NUMBER: _ClassVar[int]
    ops: _containers.RepeatedCompositeFieldContainer[WriteOp]
    def __init__(self, ops: _Optional[_Iterable[_Union[WriteOp, _Mapping]]] = ...) -> None: ...

class WriteResult(_message.Message):
    __slots__ = ("key", "code", "message", "ttl_seconds", "deleted", "position", "redirect")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_FIELD_NUMBER: _ClassVar[int]
    key: str
    code: int
    message: str
    ttl_seconds: int
    deleted: bool
    position: Position
    redirect: OwnerRedirect
    def __init__(self, key: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., deleted: _Optional[bool] = ..., position: _Optional[_Union[Position, _Mapping]] = ..., redirect: _Optional[_Union[OwnerRedirect, _Mapping]] = ...) -> None: ...

class WriteBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[WriteResult]
    def __init__(self, results: _Optional[_Iterable[_Union[WriteResult, _Mapping]]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("prefixes",)
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    prefixes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prefixes: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("prefix", "position", "started", "invalidation", "heartbeat", "reset")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    INVALIDATION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    position: Position
    started: WatchStarted
    invalidation: Invalidation
    heartbeat: WatchHeartbeat
    reset: WatchReset
    def __init__(self, prefix: _Optional[str] = ..., position: _Optional[_Union[Position, _Mapping]] = ..., started: _Optional[_Union[WatchStarted, _Mapping]] = ..., invalidation: _Optional[_Union[Invalidation, _Mapping]] = ..., heartbeat: _Optional[_Union[WatchHeartbeat, _Mapping]] = ..., reset: _Optional[_Union[WatchReset, _Mapping]] = ...) -> None: ...

class WatchStarted(_message.Message):
    __slots__ = ("valid_for_ms", "sent_at_unix_ms")
    VALID_FOR_MS_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    valid_for_ms: int
    sent_at_unix_ms: int
    def __init__(self, valid_for_ms: _Optional[int] = ..., sent_at_unix_ms: _Optional[int] = ...) -> None: ...

class Invalidation(_message.Message):
    __slots__ = ("keys", "whole_prefix")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    WHOLE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    whole_prefix: bool
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., whole_prefix: _Optional[bool] = ...) -> None: ...

class WatchHeartbeat(_message.Message):
    __slots__ = ("valid_for_ms", "sent_at_unix_ms")
    VALID_FOR_MS_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    valid_for_ms: int
    sent_at_unix_ms: int
    def __init__(self, valid_for_ms: _Optional[int] = ..., sent_at_unix_ms: _Optional[int] = ...) -> None: ...

class WatchReset(_message.Message):
    __slots__ = ("reason", "redirect")
    REASON_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_FIELD_NUMBER: _ClassVar[int]
    reason: str
    redirect: OwnerRedirect
    def __init__(self, reason: _Optional[str] = ..., redirect: _Optional[_Union[OwnerRedirect, _Mapping]] = ...) -> None: ...

class ScanRequest(_message.Message):
    __slots__ = ("prefix", "cursor", "limit", "match")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    cursor: str
    limit: int
    match: str
    def __init__(self, prefix: _Optional[str] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ..., match: _Optional[str] = ...) -> None: ...

class ScanResponse(_message.Message):
    __slots__ = ("keys", "next_cursor")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    next_cursor: str
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class ExportEntry(_message.Message):
    __slots__ = ("key", "value", "ttl_seconds")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _struct_pb2.Value
    ttl_seconds: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ExportEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[ExportEntry, _Mapping]]] = ...) -> None: ...

class ImportResponse(_message.Message):
    __slots__ = ("imported", "chunks")
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    imported: int
    chunks: int
    def __init__(self, imported: _Optional[int] = ..., chunks: _Optional[int] = ...) -> None: ...
