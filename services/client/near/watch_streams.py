"""The near cache's Watch streams: one per prefix it holds, always started again.

Each stream goes to the prefix's owner (as the client last learned it). A reset
naming the owner sends the stream there; a reset without one, an error, the end
of the stream, or silence longer than `stall` seconds flushes the prefix and
starts again through the configured address. Safety never rests on noticing a
dead stream quickly: without heartbeats the prefix stops being trusted by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.client.near.near_cache import NearCache

if TYPE_CHECKING:
    Stub = cache_pb2_grpc.CacheServiceAsyncStub

log = logging.getLogger(__name__)

# A stream silent this long (heartbeats come every ~150 ms) is given up (seconds).
STALL_SECONDS = 2.0
# Waits between attempts after a failure, growing to the last.
_BACKOFF = (0.05, 0.1, 0.25, 0.5, 1.0)


class WatchStreams:
    """Keeps a Watch stream open for every prefix the near cache asks for."""

    def __init__(
        self,
        near: NearCache,
        stub: Callable[[str], Stub],
        route: Callable[[str], str],
        address: str,
        *,
        stall: float = STALL_SECONDS,
    ) -> None:
        self._near = near
        self._stub = stub
        self._route = route
        self._address = address
        self._stall = stall
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def want(self, prefix: str) -> None:
        """Make sure a stream for `prefix` is open (or opening)."""
        if self._closed or prefix in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(
            self._follow(prefix), name=f"near-cache-watch:{prefix}"
        )
        self._tasks[prefix] = task

    async def close(self) -> None:
        """Close every stream (the near cache stops being vouched for)."""
        self._closed = True
        tasks = dict(self._tasks)
        self._tasks.clear()
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        for prefix in tasks:
            self._near.flush(prefix, None)

    async def _follow(self, prefix: str) -> None:
        address = self._route(prefix)
        failures = 0
        while not self._closed:
            redirect: str | None = None
            reason = "stream"
            try:
                redirect, healthy = await self._watch_once(prefix, address)
            except grpc.aio.AioRpcError as exc:
                healthy = False
                log.debug("watch of %r at %s ended: %s", prefix, address, exc.code().name)
            except TimeoutError:
                # Open but silent (a partition that leaves the socket up): counted apart.
                healthy = False
                reason = "silent"
                log.warning("watch of %r at %s went silent for %.1fs", prefix, address, self._stall)
            self._near.flush(prefix, reason)
            address = redirect or self._address
            failures = 0 if healthy else failures + 1
            if redirect is None:
                await asyncio.sleep(_BACKOFF[min(failures, len(_BACKOFF) - 1)])

    async def _watch_once(self, prefix: str, address: str) -> tuple[str | None, bool]:
        """Follow one stream; (address to go to next or None, whether it had started)."""
        near = self._near
        asked = near.now()
        call = self._stub(address).Watch(cache_pb2.WatchRequest(prefixes=[prefix]))
        started = False
        try:
            # Checked at every event, not left to close()'s cancellation: wait_for
            # swallows a cancel that lands as a read completes (Python 3.11), and a
            # stream that keeps delivering would then outlive close() for ever.
            while not self._closed:
                async with asyncio.timeout(self._stall):  # not wait_for: see above
                    event = await call.read()
                if event is grpc.aio.EOF:  # type: ignore[attr-defined]
                    return None, started
                assert isinstance(event, cache_pb2.WatchEvent)
                kind = event.WhichOneof("event")
                if kind == "invalidation":
                    inv = event.invalidation
                    ok = near.invalidated(prefix, event.position, inv.keys, inv.whole_prefix)
                elif kind == "heartbeat":
                    beat = event.heartbeat
                    ok = near.heartbeat(
                        prefix, event.position, beat.valid_for_ms, beat.sent_at_unix_ms
                    )
                elif kind == "started":
                    near.started(
                        prefix,
                        event.position,
                        event.started.valid_for_ms,
                        event.started.sent_at_unix_ms,
                        asked,
                    )
                    ok = started = True
                else:
                    near.flush(prefix, "reset")
                    redirect = event.reset.redirect.address
                    log.debug("watch of %r reset: %s", prefix, event.reset.reason)
                    return (redirect if redirect and redirect != address else None), started
                if not ok:
                    return None, started
            return None, started
        finally:
            call.cancel()
