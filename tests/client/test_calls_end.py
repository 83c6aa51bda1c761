"""Every client call, and close(), ends whatever the server does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
from google.protobuf import struct_pb2

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.client import CacheClient
from services.client.errors import CacheError
from tests.conftest import grpc_server
from tests.support.polling import eventually

PREFIX = "busy"
CLOSES = 30


@asynccontextmanager
async def serving(servicer: cache_pb2_grpc.CacheServiceServicer) -> AsyncIterator[str]:
    """The address of an in-process server of `servicer`."""
    add = cache_pb2_grpc.add_CacheServiceServicer_to_server
    async with grpc_server(lambda server: add(servicer, server)) as (address, _):
        yield address


class FloodingWatch(cache_pb2_grpc.CacheServiceServicer):
    """A Watch that starts, then sends heartbeats as fast as the stream takes them; a Get
    answers one value of the watched prefix, so the near cache asks for the stream."""

    def __init__(self) -> None:
        # Events the client has taken off the streams so far.
        self.sent = 0

    async def Get(  # noqa: N802 (the RPC's name)
        self, request: cache_pb2.GetRequest, context: Any
    ) -> cache_pb2.GetResponse:
        at = cache_pb2.Position(prefix=PREFIX, epoch=1, sequence=1)
        value = struct_pb2.Value(string_value="v")
        return cache_pb2.GetResponse(found=True, value=value, ttl_remaining_seconds=60, position=at)

    async def Watch(  # noqa: N802 (the RPC's name)
        self, request: cache_pb2.WatchRequest, context: Any
    ) -> AsyncIterator[cache_pb2.WatchEvent]:
        at = cache_pb2.Position(prefix=PREFIX, epoch=1, sequence=1)
        started = cache_pb2.WatchStarted(valid_for_ms=60_000, sent_at_unix_ms=_now_ms())
        yield cache_pb2.WatchEvent(prefix=PREFIX, position=at, started=started)
        while True:
            beat = cache_pb2.WatchHeartbeat(valid_for_ms=60_000, sent_at_unix_ms=_now_ms())
            yield cache_pb2.WatchEvent(prefix=PREFIX, position=at, heartbeat=beat)
            self.sent += 1

    def flowing(self, events: int) -> Callable[[], bool]:
        """A condition: `events` more events taken than now."""
        target = self.sent + events
        return lambda: self.sent >= target


def _now_ms() -> int:
    return int(time.time() * 1000)


async def test_close_ends_while_a_watch_stream_keeps_delivering() -> None:
    # A cancellation that lands as a read completes can be swallowed by asyncio.wait_for
    # (Python 3.11): close() must not rely on the cancellation alone to end a stream.
    flooding = FloodingWatch()  # type: ignore[abstract]  # Watch is enough
    async with serving(flooding) as address:
        for attempt in range(CLOSES):
            client = CacheClient(address, timeout=5.0, near_cache_bytes=1 << 20)
            # A read the near cache may hold makes it ask for the prefix's stream.
            assert await client.get(f"{PREFIX}:k") == "v"
            await eventually(flooding.flowing(100), 60, "no stream flowed")
            try:
                # Not a timing assertion: a close that works takes milliseconds; one
                # that hangs never ends.
                await asyncio.wait_for(client.close(), 30)
            except TimeoutError:
                raise AssertionError(f"close() hung (attempt {attempt + 1})") from None


class ShortMGet(cache_pb2_grpc.CacheServiceServicer):
    """An MGet that answers one result whatever it was asked (a broken server)."""

    async def MGet(  # noqa: N802 (the RPC's name)
        self, request: cache_pb2.MGetRequest, context: Any
    ) -> cache_pb2.MGetResponse:
        return cache_pb2.MGetResponse(results=[cache_pb2.MGetResult(key=request.keys[0])])


async def test_batched_gets_end_whatever_the_server_answers() -> None:
    short = ShortMGet()  # type: ignore[abstract]  # MGet is enough
    async with serving(short) as address:
        client = CacheClient(address, timeout=2.0)
        try:
            # Two gets in one tick share one MGet, whose reply is one result short.
            gets = asyncio.gather(client.get("p:a"), client.get("p:b"), return_exceptions=True)
            try:
                outcomes = await asyncio.wait_for(gets, 30)
            except TimeoutError:
                raise AssertionError("a batched get never ended") from None
            assert any(isinstance(o, Exception) for o in outcomes), outcomes
        finally:
            await client.close()


class SilentWrites(cache_pb2_grpc.CacheServiceServicer):
    """An owner that takes writes and never answers them (a silent link, a stuck disk)."""

    async def Set(  # noqa: N802 (the RPC's name)
        self, request: cache_pb2.SetRequest, context: Any
    ) -> cache_pb2.SetResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_batched_write_queued_behind_one_to_a_silent_owner_ends_within_its_timeout() -> (
    None
):
    silent = SilentWrites()  # type: ignore[abstract]  # Set is enough
    timeout = 3.0
    async with serving(silent) as address:
        client = CacheClient(address, timeout=timeout)
        try:
            first = asyncio.ensure_future(client.set("p:a", "v", 60))
            await asyncio.sleep(0)  # the first leaves alone; the second waits its turn
            started = time.monotonic()
            second = asyncio.ensure_future(client.set("p:b", "w", 60))
            outcomes = await asyncio.wait_for(
                asyncio.gather(first, second, return_exceptions=True), 30
            )
            took = time.monotonic() - started
        finally:
            await client.close()
    codes = [o.code if isinstance(o, CacheError) else o for o in outcomes]
    assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * 2, outcomes
    # Its own timeout, not the first call's and then its own (2 x 3 s).
    assert took < 2 * timeout - 1.0, f"the queued write took {took:.2f}s (timeout {timeout}s)"
