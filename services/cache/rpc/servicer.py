"""CacheService RPC handlers: translate protobuf to store calls and ServiceError to status."""

# The handlers carry the RPC names of the generated base class (Get, MSet, ...).
# ruff: noqa: N802

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.ownership.owners import OwnerInfo, OwnershipView
from services.cache.rpc.operator_rpcs import OperatorRpcs
from services.cache.rpc.routing import Router
from services.cache.rpc.values import blob_of as _blob
from services.cache.rpc.write_batch import write_batch
from services.cache.store.admission import Admission
from services.cache.store.interface import UNAVAILABLE, Health, Hit, Store
from services.cache.store.keys import KeyRules
from services.cache.store.stats import Snapshot
from services.cache.watch.stream import Watches, position_of
from services.common.auth import AdminAuth
from services.common.errors import (
    Context,
    ServiceError,
    abort,
    answers_service_errors,
    invalid_argument,
)
from services.common.hit_rate import hit_rate
from services.common.partition import merge


class CacheServicer(cache_pb2_grpc.CacheServiceServicer):
    """The CacheService over the node's store; calls on prefixes owned elsewhere are
    forwarded there by the router (the data RPCs), or answered from here (the rest).
    Scan, Export and Import are answered by OperatorRpcs."""

    def __init__(
        self,
        store: Store,
        router: Router,
        *,
        keys: KeyRules,
        admission: Admission,
        ownership: OwnershipView,
        auth: AdminAuth,
        enabled: bool,
        node_id: str,
        max_reply_bytes: int = 4 * 1024 * 1024,
        watches: Watches | None = None,
    ) -> None:
        self._store = store
        # The near cache's Watch streams (None: Watch is not served).
        self._watches = watches
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
        self._operator = OperatorRpcs(
            store,
            router,
            keys=keys,
            admission=admission,
            auth=auth,
            require_enabled=self._require_enabled,
        )

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
            at = self._store.position(prefix)  # before the read: never later than it
            hit = await self._store.get(request.key, prefix)
            reply = cache_pb2.GetResponse(
                key=request.key, found=hit is not None, position=position_of(at)
            )
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
            (at,) = await self._store.write([entry])
            return cache_pb2.SetResponse(
                key=request.key, ttl_seconds=entry.ttl, position=position_of(at)
            )

        return await self._router.one(context, "Set", entry.prefix, request, here)

    @answers_service_errors
    async def Delete(
        self, request: cache_pb2.DeleteRequest, context: Context
    ) -> cache_pb2.DeleteResponse:
        self._require_enabled()
        prefix = self._keys.prefix_of(request.key, "key")

        async def here() -> cache_pb2.DeleteResponse:
            removed = await self._store.delete(request.key)
            return cache_pb2.DeleteResponse(
                key=request.key, deleted=removed.entries > 0, position=position_of(removed.at)
            )

        return await self._router.one(context, "Delete", prefix, request, here)

    @answers_service_errors
    async def MGet(
        self, request: cache_pb2.MGetRequest, context: Context
    ) -> cache_pb2.MGetResponse:
        self._require_enabled()
        keys = list(request.keys)
        self._admission.batch(len(keys), "keys")
        prefixes = self._keys.prefixes(keys, "keys")

        # Positions of the prefixes read here, each taken before its read.
        read_at: dict[str, cache_pb2.Position] = {}

        async def here(indexes: list[int]) -> list[Found]:
            for i in indexes:
                if prefixes[i] not in read_at:
                    read_at[prefixes[i]] = position_of(self._store.position(prefixes[i]))
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
        ordered = merge(len(keys), parts)
        # Built in place: a result made on its own would be copied into the reply.
        reply = cache_pb2.MGetResponse()
        add = reply.results.add
        for key, prefix, item in zip(keys, prefixes, ordered, strict=True):
            if item is None:
                add(key=key, found=False, position=read_at.get(prefix))
            elif isinstance(item, Hit):
                _fill(add(key=key, found=True, position=read_at.get(prefix)), item)
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

        positions: list[cache_pb2.Position] = []

        async def here(indexes: list[int]) -> int:
            written = await self._store.write([entries[i] for i in indexes])
            positions.extend(position_of(at) for at in written)
            return len(indexes)

        def forwarded(reply: cache_pb2.MSetResponse) -> int:
            positions.extend(reply.positions)
            return int(reply.written)

        parts = await self._router.fan_out(
            context,
            "MSet",
            [e.prefix for e in entries],
            local=here,
            request_for=lambda indexes: cache_pb2.MSetRequest(
                items=[request.items[i] for i in indexes]
            ),
            from_reply=forwarded,
        )
        return cache_pb2.MSetResponse(
            written=sum(written for _, written in parts), positions=positions
        )

    @answers_service_errors
    async def WriteBatch(
        self, request: cache_pb2.WriteBatchRequest, context: Context
    ) -> cache_pb2.WriteBatchResponse:
        # #12: a status per op; the logic lives in services/cache/rpc/write_batch.py.
        self._require_enabled()
        return await write_batch(
            request,
            context,
            store=self._store,
            router=self._router,
            admission=self._admission,
            blob_of=_blob,
        )

    @answers_service_errors
    async def Clear(
        self, request: cache_pb2.ClearRequest, context: Context
    ) -> cache_pb2.ClearResponse:
        self._auth.check(tuple(context.invocation_metadata() or ()), "Clear")
        self._require_enabled()
        prefix = self._keys.check_prefix(request.prefix, "prefix")

        async def here() -> cache_pb2.ClearResponse:
            removed = await self._store.clear(prefix)
            return cache_pb2.ClearResponse(
                prefix=prefix, deleted=removed.entries, position=position_of(removed.at)
            )

        return await self._router.one(context, "Clear", prefix, request, here)

    async def Scan(
        self, request: cache_pb2.ScanRequest, context: Context
    ) -> cache_pb2.ScanResponse:
        return await self._operator.scan(request, context)

    async def Export(
        self, request: cache_pb2.ExportRequest, context: Context
    ) -> AsyncIterator[cache_pb2.ExportEntry]:
        async for entry in self._operator.export(request, context):
            yield entry

    async def Import(
        self, request_iterator: AsyncIterator[cache_pb2.ImportRequest], context: Context
    ) -> cache_pb2.ImportResponse:
        return await self._operator.import_entries(request_iterator, context)

    async def Watch(
        self, request: cache_pb2.WatchRequest, context: Context
    ) -> AsyncIterator[cache_pb2.WatchEvent]:
        try:
            self._require_enabled()
            if self._watches is None:
                raise ServiceError(
                    grpc.StatusCode.UNIMPLEMENTED, "this server does not serve Watch"
                )
            if not request.prefixes:
                raise invalid_argument(
                    "prefixes is empty: name at least one prefix (or key) to watch", "prefixes"
                )
            self._admission.batch(len(request.prefixes), "prefixes")
            prefixes = [
                self._keys.prefix_or_key(text, f"prefixes[{i}]")
                for i, text in enumerate(request.prefixes)
            ]
        except ServiceError as exc:
            await abort(context, exc)
        async for event in self._watches.stream(prefixes):
            yield event

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
                memory_bytes=t.memory_bytes,
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
