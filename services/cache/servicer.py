"""CacheService RPC handlers: translate protobuf to store calls and ServiceError to status."""

# The handlers carry the RPC names of the generated base class (Get, MSet, ...).
# ruff: noqa: N802

from __future__ import annotations

import math
import re

import grpc
from google.protobuf import struct_pb2

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.admission import Admission
from services.cache.keys import KeyRules
from services.cache.ownership.owners import OwnerInfo, OwnershipView
from services.cache.routing import Router
from services.cache.shards import ShardedStore
from services.cache.stats import Snapshot
from services.cache.store import UNAVAILABLE, CacheStore, Health, Hit
from services.common.auth import AdminAuth
from services.common.errors import (
    Context,
    ServiceError,
    answers_service_errors,
    invalid_argument,
)
from services.common.hit_rate import hit_rate


class CacheServicer(cache_pb2_grpc.CacheServiceServicer):
    """The CacheService over one CacheStore; calls on prefixes owned elsewhere are
    forwarded there by the router (the data RPCs), or answered from here (the rest)."""

    def __init__(
        self,
        store: CacheStore | ShardedStore,  # shards (#16): or one store per database
        router: Router,
        *,
        keys: KeyRules,
        admission: Admission,
        ownership: OwnershipView,
        auth: AdminAuth,
        enabled: bool,
        node_id: str,
        max_reply_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._store = store
        # The rules every request is checked against before it is routed (the
        # store checks the same, for callers that reach it directly).
        self._keys = keys
        self._admission = admission
        self._ownership = ownership
        # Largest reply gRPC will send (GRPC_MAX_MESSAGE_BYTES). An MGet is refused
        # against it before its reply is built: at 1000 keys of 1 MiB each, building
        # first and letting gRPC refuse afterwards would cost gigabytes of memory.
        self._max_reply_bytes = max_reply_bytes
        self._router = router
        self._auth = auth
        self._enabled = enabled
        self._node_id = node_id

    def _require_enabled(self) -> None:
        if not self._enabled:
            raise ServiceError(
                grpc.StatusCode.UNAVAILABLE,
                "the cache is disabled on this server (CACHE_ENABLED=false); "
                "callers should go to the source directly",
            )

    @answers_service_errors
    async def Get(self, request: cache_pb2.GetRequest, context: Context) -> cache_pb2.GetResponse:
        self._require_enabled()
        prefix = self._keys.prefix_of(request.key, "key")

        async def here() -> cache_pb2.GetResponse:
            hit = await self._store.get(request.key, prefix)
            reply = cache_pb2.GetResponse(key=request.key, found=hit is not None)
            if hit is not None:
                _fill(reply, hit)
            return reply

        return await self._router.one(context, "Get", prefix, request, here)

    @answers_service_errors
    async def Set(self, request: cache_pb2.SetRequest, context: Context) -> cache_pb2.SetResponse:
        self._require_enabled()
        blob = _blob(request.value, request.HasField("value"), "value")
        entry = self._admission.entry(request.key, blob, request.ttl_seconds)

        async def here() -> cache_pb2.SetResponse:
            await self._store.write([entry])
            return cache_pb2.SetResponse(key=request.key, ttl_seconds=entry.ttl)

        return await self._router.one(context, "Set", entry.prefix, request, here)

    @answers_service_errors
    async def Delete(
        self, request: cache_pb2.DeleteRequest, context: Context
    ) -> cache_pb2.DeleteResponse:
        self._require_enabled()
        prefix = self._keys.prefix_of(request.key, "key")

        async def here() -> cache_pb2.DeleteResponse:
            deleted = await self._store.delete(request.key)
            return cache_pb2.DeleteResponse(key=request.key, deleted=deleted)

        return await self._router.one(context, "Delete", prefix, request, here)

    @answers_service_errors
    async def MGet(
        self, request: cache_pb2.MGetRequest, context: Context
    ) -> cache_pb2.MGetResponse:
        self._require_enabled()
        keys = list(request.keys)
        self._admission.batch(len(keys), "keys")
        prefixes = self._keys.prefixes(keys, "keys")

        async def here(indexes: list[int]) -> list[Found]:
            hits = await self._store.mget(
                [keys[i] for i in indexes], [prefixes[i] for i in indexes]
            )
            self._check_reply_size(
                sum(
                    len(hit.blob) + len(keys[i])
                    for i, hit in zip(indexes, hits, strict=True)
                    if hit
                )
            )
            return list(hits)

        parts = await self._router.fan_out(
            context,
            "MGet",
            prefixes,
            local=here,
            request_for=lambda indexes: cache_pb2.MGetRequest(keys=[keys[i] for i in indexes]),
            from_reply=lambda reply: list[Found](reply.results),
        )
        ordered: list[Found] = [None] * len(keys)
        for indexes, found in parts:
            for i, item in zip(indexes, found, strict=True):
                ordered[i] = item
        # Built in place: a result made on its own would be copied into the reply.
        reply = cache_pb2.MGetResponse()
        add = reply.results.add
        for key, item in zip(keys, ordered, strict=True):
            if item is None:
                add(key=key, found=False)
            elif isinstance(item, Hit):
                _fill(add(key=key, found=True), item)
            else:
                reply.results.append(item)  # an owner's answer, forwarded
        # Parts from several owners are each within the limit but may not be together.
        self._check_reply_size(reply.ByteSize())
        return reply

    def _check_reply_size(self, size: int) -> None:
        if size > self._max_reply_bytes:
            raise ServiceError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the MGet reply would be at least {size} bytes, over this server's "
                f"{self._max_reply_bytes}-byte message limit (GRPC_MAX_MESSAGE_BYTES): "
                "ask for fewer keys per call",
            )

    @answers_service_errors
    async def MSet(
        self, request: cache_pb2.MSetRequest, context: Context
    ) -> cache_pb2.MSetResponse:
        self._require_enabled()
        self._admission.batch(len(request.items), "items")
        # Every item is checked before any is written, wherever it is written.
        entries = [
            self._admission.entry(
                item.key,
                _blob(item.value, item.HasField("value"), f"items[{i}].value"),
                item.ttl_seconds,
                f"items[{i}].",
            )
            for i, item in enumerate(request.items)
        ]
        if not entries:
            return cache_pb2.MSetResponse(written=0)

        async def here(indexes: list[int]) -> int:
            await self._store.write([entries[i] for i in indexes])
            return len(indexes)

        parts = await self._router.fan_out(
            context,
            "MSet",
            [e.prefix for e in entries],
            local=here,
            request_for=lambda indexes: cache_pb2.MSetRequest(
                items=[request.items[i] for i in indexes]
            ),
            from_reply=lambda reply: int(reply.written),
        )
        return cache_pb2.MSetResponse(written=sum(written for _, written in parts))

    @answers_service_errors
    async def Clear(
        self, request: cache_pb2.ClearRequest, context: Context
    ) -> cache_pb2.ClearResponse:
        self._auth.check(tuple(context.invocation_metadata() or ()), "Clear")
        self._require_enabled()
        prefix = self._keys.check_prefix(request.prefix, "prefix")

        async def here() -> cache_pb2.ClearResponse:
            deleted = await self._store.clear(prefix)
            return cache_pb2.ClearResponse(prefix=prefix, deleted=deleted)

        return await self._router.one(context, "Clear", prefix, request, here)

    @answers_service_errors
    async def Health(
        self, request: cache_pb2.HealthRequest, context: Context
    ) -> cache_pb2.HealthResponse:
        if self._enabled:
            verdict = await self._store.health()
        else:
            verdict = Health(UNAVAILABLE, "the cache is disabled (CACHE_ENABLED=false)")
        snapshot = await self._store.metrics(refresh_keys=verdict.status != UNAVAILABLE)
        return cache_pb2.HealthResponse(
            status=verdict.status,
            enabled=self._enabled,
            hit_rate=snapshot.hit_rate,
            metrics=_metrics(snapshot),
            reason=verdict.reason,
            node_id=self._node_id,
        )

    @answers_service_errors
    async def GetMetrics(
        self, request: cache_pb2.GetMetricsRequest, context: Context
    ) -> cache_pb2.GetMetricsResponse:
        snapshot = await self._store.metrics(refresh_keys=self._store.is_open)
        return cache_pb2.GetMetricsResponse(
            hits=snapshot.hits,
            misses=snapshot.misses,
            hit_rate=snapshot.hit_rate,
            keys=snapshot.keys,
            memory_bytes=snapshot.memory_bytes,
            metrics=_metrics(snapshot),
        )

    @answers_service_errors
    async def GetOwnership(
        self, request: cache_pb2.GetOwnershipRequest, context: Context
    ) -> cache_pb2.GetOwnershipResponse:
        prefix = self._keys.prefix_or_key(request.prefix, "prefix")
        return cache_pb2.GetOwnershipResponse(owner=_owner(self._ownership.owner_of(prefix)))

    @answers_service_errors
    async def ListOwners(
        self, request: cache_pb2.ListOwnersRequest, context: Context
    ) -> cache_pb2.ListOwnersResponse:
        ownership = self._ownership
        return cache_pb2.ListOwnersResponse(
            members=[
                cache_pb2.Member(
                    node_id=m.node_id, address=m.address, heartbeat_at=m.heartbeat_at, alive=m.alive
                )
                for m in ownership.members()
            ],
            owners=[_owner(o) for o in ownership.owners()],
        )


def _blob(value: struct_pb2.Value, present: bool, field: str) -> bytes:
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


# One MGet item as a part of the call answered it: a hit here, a miss, or a
# result forwarded from the owner of its prefix.
Found = Hit | cache_pb2.MGetResult | None


def _fill(reply: cache_pb2.GetResponse | cache_pb2.MGetResult, hit: Hit) -> None:
    reply.value.ParseFromString(hit.blob)
    reply.ttl_remaining_seconds = hit.ttl_remaining


def _metrics(snapshot: Snapshot) -> cache_pb2.CacheMetrics:
    return cache_pb2.CacheMetrics(
        hits=snapshot.hits,
        misses=snapshot.misses,
        hit_rate=snapshot.hit_rate,
        keys=snapshot.keys,
        memory_bytes=snapshot.memory_bytes,
        max_memory_bytes=snapshot.max_memory_bytes,
        evictions=snapshot.evictions,
        expired=snapshot.expired,
        sets=snapshot.sets,
        deletes=snapshot.deletes,
        commits=snapshot.commits,
        prefixes=[
            cache_pb2.PrefixMetrics(
                prefix=label,
                hits=t.hits,
                misses=t.misses,
                hit_rate=hit_rate(t.hits, t.misses),
                keys=t.keys,
            )
            for label, t in sorted(snapshot.prefixes.items())
        ],
    )


def _owner(owner: OwnerInfo) -> cache_pb2.Owner:
    return cache_pb2.Owner(
        prefix=owner.prefix,
        node_id=owner.node_id,
        address=owner.address,
        epoch=owner.epoch,
        expires_at=owner.expires_at,
    )
