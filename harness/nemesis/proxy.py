"""A TCP blackhole proxy: cut a link, one way or both, while every socket stays open.

Modelled on etcd's `pkg/proxy`: the client dials the proxy, the proxy dials the
target, and two pumps copy bytes. A cut stops a direction without closing
anything, the way a silent network does (a dead router, a dropped route): the
kernel on each side still acknowledges what it is sent, so keepalives and
`tcp_user_timeout` see nothing wrong. Two kinds of silence:

- `drop`: bytes read in a cut direction are discarded (etcd's blackhole); after
  the heal the stream is corrupt and the endpoints find out by themselves;
- `hold`: the pump stops reading, so bytes wait in the kernel and flow again
  after the heal (a partition that heals before TCP gives up).

`cut()` falls between requests; `cut_on(pattern)` arms a cut that falls inside
the next client-to-target chunk holding `pattern`, after forwarding its first
half (a request the target has begun to read but cannot finish). A side that
closes during a cut is closed on the other side only after the heal.

The proxy runs its own event loop in a thread, so blocking and asyncio code
drive it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CHUNK = 65536
# Idle seconds before the first probe, seconds between probes, probes unanswered:
# a dead client is found about 6 s after its link goes quiet.
KEEPALIVE = ((socket.TCP_KEEPIDLE, 3), (socket.TCP_KEEPINTVL, 1), (socket.TCP_KEEPCNT, 3))


class Direction(enum.Flag):
    """Which way a cut stops bytes: to the target, back to the client, or both."""

    TO_TARGET = enum.auto()
    TO_CLIENT = enum.auto()
    BOTH = TO_TARGET | TO_CLIENT


@dataclass
class ProxyStats:
    """What the proxy saw; read from any thread."""

    connections: int = 0
    # Bytes discarded by `drop` cuts.
    dropped: int = 0
    # Monotonic time of the last cut that fell (None: never).
    cut_at: float | None = None


class BlackholeProxy:
    """Forwards 127.0.0.1:<port> to `target_host:target_port` until told to cut."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1"):
        self._target = (target_host, target_port)
        self._listen_host = listen_host
        self.stats = ProxyStats()
        self.port = 0
        self._cut = Direction(0)
        self._mode = "drop"
        # (pattern, direction to cut, event set when it fell)
        self._armed: tuple[bytes, Direction, threading.Event] | None = None
        self._loop = asyncio.new_event_loop()
        # Replaced (and the old one set) at every change of the cut: waiters re-check.
        self._changed = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # One task per connection, ended by close() so the loop stops with none pending.
        self._conns: set[asyncio.Task[None]] = set()

    def retarget(self, host: str, port: int) -> None:
        """Send new connections to `host:port` (a target that picks its port after ours)."""
        self._target = (host, port)

    @property
    def address(self) -> str:
        return f"{self._listen_host}:{self.port}"

    def start(self) -> BlackholeProxy:
        """Listen on an ephemeral port and start forwarding."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def close(self) -> None:
        """Close every connection and the listener; stop the loop."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> BlackholeProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- faults ------------------------------------------------------------------

    def cut(self, direction: Direction = Direction.BOTH, *, mode: str = "drop") -> None:
        """Stop forwarding `direction` now (between requests); sockets stay open."""
        if mode not in ("drop", "hold"):
            raise ValueError(f"mode must be 'drop' or 'hold', not {mode!r}")
        self._mode = mode
        self._run(self._set_cut, direction)

    def cut_on(
        self, pattern: bytes, direction: Direction = Direction.BOTH, *, mode: str = "drop"
    ) -> threading.Event:
        """Cut `direction` inside the next chunk to the target that holds `pattern`.

        The chunk is forwarded up to the middle of `pattern`; the returned event is
        set when the cut fell.
        """
        if not pattern:
            raise ValueError("cut_on needs a non-empty pattern")
        self._mode = mode
        fell = threading.Event()
        self._armed = (pattern, direction, fell)
        return fell

    def heal(self) -> None:
        """Forward both ways again."""
        self._armed = None
        self._run(self._set_cut, Direction(0))

    @property
    def is_cut(self) -> bool:
        return bool(self._cut)

    @contextmanager
    def partitioned(
        self, direction: Direction = Direction.BOTH, *, mode: str = "drop"
    ) -> Iterator[None]:
        """Cut for the duration of a `with` block, healed whatever happens."""
        self.cut(direction, mode=mode)
        try:
            yield
        finally:
            self.heal()

    # -- the loop's side -----------------------------------------------------------

    def _run(self, fn: object, *args: object) -> None:
        async def call() -> None:
            fn(*args)  # type: ignore[operator]

        asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=10)

    def _set_cut(self, direction: Direction) -> None:
        if direction and not self._cut:
            self.stats.cut_at = time.monotonic()
        self._cut = direction
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._listen_host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        self._set_cut(Direction(0))

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)
        try:
            t_reader, t_writer = await asyncio.open_connection(*self._target)
        except OSError:
            c_writer.close()
            return
        self._writers.update((c_writer, t_writer))
        _keep_alive(c_writer)
        try:
            await asyncio.gather(
                self._pump(c_reader, t_writer, Direction.TO_TARGET),
                self._pump(t_reader, c_writer, Direction.TO_CLIENT),
                return_exceptions=True,
            )
        finally:
            for writer in (c_writer, t_writer):
                self._writers.discard(writer)
                writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: Direction
    ) -> None:
        try:
            await self._copy(reader, writer, way)
        except OSError:
            # The link broke (a reset, or keepalives found the client gone): the
            # other side is closed too, as a server's own keepalives would close it.
            writer.close()
            raise

    async def _copy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: Direction
    ) -> None:
        while True:
            if way in self._cut and self._mode == "hold":
                await self._wait_healed(way)
            data = await reader.read(CHUNK)
            if not data:
                # The sender closed: a silent link does not carry that either.
                await self._wait_healed(way)
                writer.close()
                return
            if way in self._cut:
                if self._mode == "hold":
                    await self._wait_healed(way)
                else:
                    self.stats.dropped += len(data)
                    continue
            armed = self._armed
            if armed is not None and way is Direction.TO_TARGET and armed[0] in data:
                pattern, direction, fell = armed
                self._armed = None
                cut_after = data.index(pattern) + max(1, len(pattern) // 2)
                writer.write(data[:cut_after])
                await writer.drain()
                self._set_cut(direction)
                fell.set()
                if self._mode == "drop":
                    self.stats.dropped += len(data) - cut_after
                    continue
                await self._wait_healed(way)
                data = data[cut_after:]
            writer.write(data)
            await writer.drain()

    async def _wait_healed(self, way: Direction) -> None:
        while way in self._cut:
            await self._changed.wait()


def _keep_alive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalives on the client's side, as PostgreSQL sets them on the cache's
    sessions (storage/pg_session.py) and the HA overlay on every session: a client
    that went away behind a kernel partition (its FIN dropped) is found within
    seconds. Without them the proxy, alive itself, would keep the server's side of
    every such connection open, and a long run of partitions would exhaust
    PostgreSQL's max_connections. A cut of the proxy's own leaves them answered."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    # Already gone (reset before it was accepted): the pumps find that out.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in KEEPALIVE:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
