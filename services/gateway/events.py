"""GET /api/v1/events: the dashboard's Server-Sent Events stream.

Every open stream is served by one `EventHub` per gateway. The hub keeps the
latest event of each kind (so a page that connects draws at once) and runs its
`Feed` (dashboard_feed.py) only while at least one stream is open: one Watch on
the cache and one tick a second, however many pages listen. A page that falls
too far behind is disconnected; EventSource reconnects and gets the whole state
again, so nothing is left half drawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

log = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
EVENT_STREAM = "text/event-stream"
# Events a page may have waiting before it is dropped (it reconnects, whole).
QUEUE_LIMIT = 256
# What EventSource waits before reconnecting after the stream ends (ms).
RETRY_MS = 2000
# The kinds of event, as the page listens for them (see the README).
KINDS = ("snapshot", "sector", "metrics", "backends", "unavailable")


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: its name and its JSON data."""

    kind: str
    data: Any

    def encode(self) -> bytes:
        """The event on the wire (one `data:` line: the JSON has no newline)."""
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"event: {self.kind}\ndata: {body}\n\n".encode()


Publish = Callable[[Event], None]


class Feed(Protocol):
    """What produces the events; runs while anyone listens."""

    async def run(self, publish: Publish) -> None:
        """Publish events until cancelled."""
        ...


class _Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_LIMIT)

    def offer(self, event: Event | None) -> bool:
        """Queue `event`; False when the page is too far behind to catch up."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True


class EventHub:
    """Fans one feed out to every open event stream."""

    def __init__(self, feed: Feed) -> None:
        self._feed = feed
        self._subscribers: set[_Subscriber] = set()
        # The newest event per state key ("snapshot", "sector:XLK", ...), for newcomers.
        self._latest: dict[str, Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def listeners(self) -> int:
        """Open streams."""
        return len(self._subscribers)

    def current(self) -> list[Event]:
        """The state a newly connected page is sent first."""
        return list(self._latest.values())

    def publish(self, event: Event) -> None:
        """Remember `event` as the latest of its kind and send it to every stream."""
        if event.kind == "snapshot":
            # A snapshot carries every sector: single sector updates before it are superseded.
            self._latest = {k: e for k, e in self._latest.items() if e.kind != "sector"}
        key = event.kind
        if event.kind == "sector":
            key = f"sector:{event.data.get('symbol', '')}"
        elif event.kind == "unavailable":
            # Its `part` is the kind of event it stands for; the next of that kind clears it.
            key = f"unavailable:{event.data.get('part', '')}"
        if event.kind != "unavailable":
            self._latest.pop(f"unavailable:{event.kind}", None)
        self._latest[key] = event
        for subscriber in list(self._subscribers):
            if not subscriber.offer(event):
                self._drop(subscriber)

    def _drop(self, subscriber: _Subscriber) -> None:
        # Its queue is full: empty it and leave only the end marker.
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(None)
        self._subscribers.discard(subscriber)
        log.info("an event stream fell %d events behind; dropped (it reconnects)", QUEUE_LIMIT)

    def _subscribe(self) -> _Subscriber:
        subscriber = _Subscriber()
        self._subscribers.add(subscriber)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run_feed(), name="dashboard-feed"
            )
        return subscriber

    async def _unsubscribe(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)
        if not self._subscribers:
            await self._stop_feed()

    async def _run_feed(self) -> None:
        try:
            await self._feed.run(self.publish)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the dashboard feed failed; the streams end and pages reconnect")
            self._end_streams()

    async def _stop_feed(self) -> None:
        task, self._task = self._task, None
        # The state goes with the feed: the next one starts from what it reads.
        self._latest.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _end_streams(self) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(None)
        self._subscribers.clear()
        self._task = None
        self._latest.clear()

    async def close(self) -> None:
        """End every stream and the feed (on shutdown, so draining does not wait for pages)."""
        self._closed = True
        for subscriber in list(self._subscribers):
            if not subscriber.offer(None):
                self._drop(subscriber)
        self._subscribers.clear()
        await self._stop_feed()

    async def handle(
        self, request: web.Request, headers: Iterable[tuple[str, str]] = ()
    ) -> web.StreamResponse:
        """GET (or HEAD) /api/v1/events: the current state, then every event as it happens."""
        response = web.StreamResponse(
            headers={
                "Content-Type": EVENT_STREAM,
                "Cache-Control": "no-cache",
                # Proxies that buffer (nginx) would hold events back.
                "X-Accel-Buffering": "no",
            }
        )
        for name, value in headers:
            response.headers[name] = value
        if request.method == "HEAD" or self._closed:
            await response.prepare(request)
            await response.write_eof()
            return response
        subscriber = self._subscribe()
        # Taken with the subscription, no await between: every later event is queued.
        first = self.current()
        try:
            await response.prepare(request)
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
            for event in first:
                await response.write(event.encode())
            while (queued := await subscriber.queue.get()) is not None:
                await response.write(queued.encode())
        except OSError:
            pass  # the page went away (ConnectionResetError): its next write failed
        finally:
            await self._unsubscribe(subscriber)
        with contextlib.suppress(OSError):
            await response.write_eof()
        return response
