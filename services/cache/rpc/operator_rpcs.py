"""The operator's RPCs of the CacheService: Scan, Export and Import (the servicer's
collaborator: it answers them through `scan`, `export` and `import_entries`).

Scan and Export read a prefix a page at a time through the store (each page
under the prefix's gate, never the whole prefix); Import writes chunk after
chunk through the same durable path as MSet, each chunk answered for only once
committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from math import ceil

from marketcache.v1 import cache_pb2
from services.cache.rpc.routing import Router
from services.cache.rpc.values import blob_of
from services.cache.store.admission import Admission, NewEntry
from services.cache.store.interface import Store
from services.cache.store.keys import KeyRules
from services.cache.store.scan import (
    decode_cursor,
    encode_cursor,
    matcher,
    matching,
    page_limit,
)
from services.common.auth import AdminAuth
from services.common.errors import Context, ServiceError, abort, answers_service_errors

# Entries per page of an export: values may be up to 1 MiB each, so a page stays small.
EXPORT_PAGE = 100


class OperatorRpcs:
    """Scan, Export and Import over the node's store, router, rules and auth."""

    def __init__(
        self,
        store: Store,
        router: Router,
        *,
        keys: KeyRules,
        admission: Admission,
        auth: AdminAuth,
        require_enabled: Callable[[], None],
    ) -> None:
        self._store = store
        self._router = router
        self._keys = keys
        self._admission = admission
        self._auth = auth
        # Raises UNAVAILABLE when the cache is disabled (the servicer's rule).
        self._require_enabled = require_enabled

    @answers_service_errors
    async def scan(
        self, request: cache_pb2.ScanRequest, context: Context
    ) -> cache_pb2.ScanResponse:
        self._require_enabled()
        prefix = self._keys.check_prefix(request.prefix, "prefix")
        limit = page_limit(request.limit, self._admission.limits.max_batch)
        after = decode_cursor(request.cursor, prefix)
        glob = matcher(request.match)

        async def here() -> cache_pb2.ScanResponse:
            page = await self._store.page(prefix, after, limit, values=False)
            return cache_pb2.ScanResponse(
                keys=[e.key for e in matching(page.entries, glob)],
                next_cursor=encode_cursor(page.last),
            )

        return await self._router.one(context, "Scan", prefix, request, here)

    async def export(
        self, request: cache_pb2.ExportRequest, context: Context
    ) -> AsyncIterator[cache_pb2.ExportEntry]:
        try:
            self._auth.check(tuple(context.invocation_metadata() or ()), "Export")
            self._require_enabled()
            if request.prefix:
                prefixes = [self._keys.check_prefix(request.prefix, "prefix")]
            else:
                # Every prefix with live entries in the database, whoever owns it.
                prefixes = sorted(await self._store.key_counts())
            for prefix in prefixes:
                async for entry in self._export_prefix(context, prefix):
                    yield entry
        except ServiceError as exc:
            await abort(context, exc)

    async def _export_prefix(
        self, context: Context, prefix: str
    ) -> AsyncIterator[cache_pb2.ExportEntry]:
        owner = self._router.owner_elsewhere(context, prefix)
        if owner is not None:
            request = cache_pb2.ExportRequest(prefix=prefix)
            async for entry in self._router.forward_stream("Export", request, context, owner):
                yield entry
            return
        after = ""
        while True:
            page = await self._store.page(prefix, after, EXPORT_PAGE, values=True)
            for listed in page.entries:
                entry = cache_pb2.ExportEntry(
                    key=listed.key, ttl_seconds=max(1, ceil(listed.expires_at - page.now))
                )
                entry.value.ParseFromString(listed.blob)
                yield entry
            if page.last is None:
                return
            after = page.last

    @answers_service_errors
    async def import_entries(
        self, request_iterator: AsyncIterator[cache_pb2.ImportRequest], context: Context
    ) -> cache_pb2.ImportResponse:
        self._auth.check(tuple(context.invocation_metadata() or ()), "Import")
        self._require_enabled()
        imported = chunks = 0
        async for chunk in request_iterator:
            chunks += 1
            entries = self._chunk_entries(chunk, chunks)
            if entries:
                await self._write(context, chunk, entries)
            imported += len(entries)
        return cache_pb2.ImportResponse(imported=imported, chunks=chunks)

    def _chunk_entries(self, chunk: cache_pb2.ImportRequest, number: int) -> list[NewEntry]:
        """Every entry of a chunk checked before any is written (as MSet); the error
        names the chunk and the entry's index in it."""
        try:
            self._admission.batch(len(chunk.entries), "entries")
            return [
                self._admission.entry(
                    e.key,
                    blob_of(e.value, e.HasField("value"), f"entries[{i}].value"),
                    e.ttl_seconds,
                    f"entries[{i}].",
                )
                for i, e in enumerate(chunk.entries)
            ]
        except ServiceError as exc:
            raise ServiceError(
                exc.code,
                f"chunk {number}: {exc.message} (nothing of this chunk was imported; "
                "the chunks before it were)",
                exc.details,
            ) from None

    async def _write(
        self, context: Context, chunk: cache_pb2.ImportRequest, entries: list[NewEntry]
    ) -> None:
        """Write a validated chunk, each prefix at its owner (MSet there); returns once durable."""

        async def here(indexes: list[int]) -> int:
            await self._store.write([entries[i] for i in indexes])
            return len(indexes)

        await self._router.fan_out(
            context,
            "MSet",
            [e.prefix for e in entries],
            local=here,
            request_for=lambda indexes: cache_pb2.MSetRequest(
                items=[
                    cache_pb2.MSetItem(
                        key=chunk.entries[i].key,
                        value=chunk.entries[i].value,
                        ttl_seconds=chunk.entries[i].ttl_seconds,
                    )
                    for i in indexes
                ]
            ),
            from_reply=lambda reply: int(reply.written),
        )
