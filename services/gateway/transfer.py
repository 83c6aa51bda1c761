"""Backup and restore over REST: JSON Lines streamed through the Export and Import RPCs.

Not in the route table: the table transcodes unary RPCs, and these stream.
Both are admin operations, checked here before the cache is called.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from aiohttp import web

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.auth import AdminAuth
from services.common.jsonl import ChunkReader, LineError, entry_line
from services.gateway.errors import HttpError, rpc_error_body, status_body
from services.gateway.headers import forwarded_metadata

log = logging.getLogger(__name__)

EXPORT_PATH = "/api/v1/cache/export"
IMPORT_PATH = "/api/v1/cache/import"
NDJSON = "application/x-ndjson"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Reply = Callable[[object, int], web.Response]


class Transfer:
    """GET /api/v1/cache/export?prefix= and POST /api/v1/cache/import (both admin)."""

    def __init__(
        self, auth: AdminAuth, channel: Callable[[], grpc.aio.Channel | None], reply: Reply
    ) -> None:
        self._auth = auth
        self._channel = channel
        self._reply = reply
        self._routes: dict[str, tuple[tuple[str, ...], Handler]] = {
            EXPORT_PATH: (("GET", "HEAD"), self.export),
            IMPORT_PATH: (("POST",), self.import_),
        }

    def handler(self, method: str, path: str) -> Handler | None:
        """The handler of `path`, None when it is not ours; 405 for another method."""
        found = self._routes.get(path)
        if found is None:
            return None
        methods, handler = found
        if method not in methods:
            raise HttpError(
                405,
                grpc.StatusCode.UNIMPLEMENTED,
                f"{path} answers {', '.join(methods)} only, not {method}",
                {"Allow": ", ".join(methods)},
            )
        return handler

    def _stub(self, request: web.Request, operation: str) -> tuple[object, list[tuple[str, str]]]:
        metadata = forwarded_metadata(request.headers.items())
        self._auth.check(metadata, operation)
        channel = self._channel()
        if channel is None:
            raise HttpError(503, grpc.StatusCode.UNAVAILABLE, "the gateway is not started")
        return cache_pb2_grpc.CacheServiceStub(channel), metadata

    async def export(self, request: web.Request) -> web.StreamResponse:
        """Every live entry (of ?prefix=, or all) as JSON Lines."""
        stub, metadata = self._stub(request, "Export")
        call = stub.Export(  # type: ignore[attr-defined]
            cache_pb2.ExportRequest(prefix=request.query.get("prefix", "")), metadata=metadata
        )
        entries = aiter(call)
        # The first entry is awaited before the headers go out, so a refusal
        # (a bad prefix, the cache down) is answered with its own status.
        try:
            first: cache_pb2.ExportEntry | None = await anext(entries)
        except StopAsyncIteration:
            first = None
        except grpc.aio.AioRpcError as err:
            status, payload = rpc_error_body(err, "the cache")
            return self._reply(payload, status)
        response = web.StreamResponse(headers={"Content-Type": NDJSON})
        await response.prepare(request)
        if first is None:
            await response.write_eof()
            return response
        await response.write((entry_line(first) + "\n").encode())
        try:
            async for entry in entries:
                await response.write((entry_line(entry) + "\n").encode())
        except grpc.aio.AioRpcError as err:
            # Too late for a status: end the connection unfinished, so the client
            # sees a broken transfer rather than a short file that looks whole.
            log.warning("export failed midway: %s: %s", err.code().name, err.details())
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    async def import_(self, request: web.Request) -> web.Response:
        """Entries from a JSON Lines body, chunk by chunk, each durable before the next."""
        stub, metadata = self._stub(request, "Import")
        reader = ChunkReader()
        failed: list[LineError] = []

        async def chunks() -> AsyncIterator[cache_pb2.ImportRequest]:
            try:
                async for line in request.content:
                    chunk = reader.feed(line)
                    if chunk is not None:
                        yield cache_pb2.ImportRequest(entries=chunk.entries)
                last = reader.finish()
                if last is not None:
                    yield cache_pb2.ImportRequest(entries=last.entries)
            except LineError as exc:
                failed.append(exc)  # ends the stream: the chunks before are imported

        try:
            reply = await stub.Import(chunks(), metadata=metadata)  # type: ignore[attr-defined]
        except grpc.aio.AioRpcError as err:
            status, payload = rpc_error_body(err, "the cache")
            if err.code() is grpc.StatusCode.INVALID_ARGUMENT:
                payload["message"] = reader.explain(err.details() or "")
            return self._reply(payload, status)
        if failed:
            message = (
                f"{failed[0]}; {reply.imported} entries before its chunk were imported, "
                "nothing of it or after it"
            )
            return self._reply(status_body(grpc.StatusCode.INVALID_ARGUMENT, message), 400)
        return self._reply({"imported": int(reply.imported), "chunks": int(reply.chunks)}, 200)
