"""The gateway's Watch on a few prefixes: one stream per owner, started again when it ends.

Each prefix is watched at the node that owns it: a reset naming another owner
moves the prefix there, a reset without one moves it back to the configured
address. Any end (a reset, an error, the end of the stream, or silence longer
than `stall` seconds while heartbeats come every ~150 ms) starts every stream
again, with backoff unless a redirect is being followed. A new stream announces
`started` for each prefix: what changed before it is not known, so the listener
reads its state anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import grpc

from marketcache.v1 import cache_pb2

log = logging.getLogger(__name__)

# A Watch silent this long (heartbeats come every ~150 ms) is started again (seconds).
STALL_SECONDS = 2.0
# Waits before starting a failed Watch again, growing to the last (seconds).
BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0)


class Changes(Protocol):
    """What a PrefixWatch tells its listener."""

    def started(self, prefix: str) -> None:
        """The stream of `prefix` starts here: changes before it are unknown."""
        ...

    def invalidated(self, prefix: str, keys: Sequence[str], whole_prefix: bool) -> None:
        """A commit changed these keys of `prefix` (or all of it)."""
        ...


class PrefixWatch:
    """Keeps the prefixes watched, each at its owner, for as long as `run` runs."""

    def __init__(
        self,
        prefixes: Sequence[str],
        address: str,
        stub: Callable[[str], Any],
        changes: Changes,
        *,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self._prefixes = list(prefixes)
        self._address = address
        # A CacheService stub for an address.
        self._stub = stub
        self._changes = changes
        self._stall = stall_seconds

    async def run(self) -> None:
        """Watch until cancelled."""
        # prefix -> the node to watch it at (None: the configured address).
        routes: dict[str, str | None] = dict.fromkeys(self._prefixes)
        failures = 0
        while True:
            groups: dict[str, list[str]] = {}
            for prefix, address in routes.items():
                groups.setdefault(address or self._address, []).append(prefix)
            follows = [
                asyncio.create_task(self._follow(address, prefixes))
                for address, prefixes in groups.items()
            ]
            try:
                done, _ = await asyncio.wait(follows, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in follows:
                    task.cancel()
                for task in follows:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            started = False
            redirected = False
            for task in done:
                moves, began = task.result()
                started |= began
                for prefix, address in moves.items():
                    routes[prefix] = address
                    redirected |= address is not None
            failures = 0 if started else failures + 1
            if not redirected:
                await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])

    async def _follow(
        self, address: str, prefixes: list[str]
    ) -> tuple[dict[str, str | None], bool]:
        """One Watch; (prefix -> where to watch it next, whether it started)."""
        call = self._stub(address).Watch(cache_pb2.WatchRequest(prefixes=prefixes))
        started = False
        try:
            while True:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a
                # cancellation that lands as a read completes, and this stream (a
                # heartbeat every ~150 ms) would then outlive the feed that cancelled it.
                async with asyncio.timeout(self._stall):
                    event = await call.read()
                if event is grpc.aio.EOF:  # type: ignore[attr-defined]
                    return {}, started
                assert isinstance(event, cache_pb2.WatchEvent)
                kind = event.WhichOneof("event")
                if kind == "started":
                    started = True
                    self._changes.started(event.prefix)
                elif kind == "invalidation":
                    inv = event.invalidation
                    self._changes.invalidated(event.prefix, inv.keys, inv.whole_prefix)
                elif kind == "reset":
                    log.info("watch of %r reset: %s", event.prefix, event.reset.reason)
                    redirect = event.reset.redirect.address
                    return {event.prefix: redirect if redirect != address else None}, started
        except grpc.aio.AioRpcError as err:
            log.info("watch at %s ended: %s", address, err.code().name)
            return {}, started
        except TimeoutError:
            log.info("watch at %s went silent; starting it again", address)
            return {}, started
        finally:
            call.cancel()
