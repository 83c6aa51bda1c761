"""The blackhole proxy against a real echo server: cuts one way or both, between requests
or inside one, drop or hold, and heals, with the client's socket open all along."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from harness.nemesis.proxy import BlackholeProxy, Direction

# How long a read must stay empty to count as "nothing arrived" (not a timing claim).
QUIET = 0.3


@pytest.fixture
async def echo() -> AsyncIterator[tuple[int, list[bytes]]]:
    """An echo server on 127.0.0.1:0, and every chunk it received."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.append(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), received
    finally:
        server.close()


async def _silent(reader: asyncio.StreamReader) -> bool:
    try:
        await asyncio.wait_for(reader.read(1), QUIET)
    except TimeoutError:
        return True
    return False


async def test_a_cut_both_ways_drops_bytes_and_keeps_the_socket_open_until_the_heal(
    echo: tuple[int, list[bytes]],
) -> None:
    port, received = echo
    with BlackholeProxy("127.0.0.1", port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"one")
        assert await reader.readexactly(3) == b"one"
        proxy.cut()
        writer.write(b"lost")
        await writer.drain()
        assert await _silent(reader)
        assert not reader.at_eof()
        assert received == [b"one"]
        assert proxy.stats.dropped == 4
        proxy.heal()
        writer.write(b"two")
        assert await reader.readexactly(3) == b"two"
        writer.close()


async def test_a_one_way_cut_lets_requests_through_but_not_replies(
    echo: tuple[int, list[bytes]],
) -> None:
    port, received = echo
    with BlackholeProxy("127.0.0.1", port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        proxy.cut(Direction.TO_CLIENT)
        writer.write(b"ping")
        await writer.drain()
        assert await _silent(reader)
        assert received == [b"ping"]  # the server got it; its reply went nowhere
        writer.close()


async def test_a_cut_on_a_pattern_falls_inside_the_request_that_carries_it(
    echo: tuple[int, list[bytes]],
) -> None:
    port, received = echo
    with BlackholeProxy("127.0.0.1", port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        fell = proxy.cut_on(b"MARKER")
        writer.write(b"before")
        assert await reader.readexactly(6) == b"before"
        assert not fell.is_set()
        writer.write(b"xxMARKERyy")
        assert await asyncio.to_thread(fell.wait, 10)
        assert await _silent(reader)  # the echo of the first half is cut too
        assert b"".join(received) == b"beforexxMAR"


async def test_a_hold_cut_delivers_everything_after_the_heal(
    echo: tuple[int, list[bytes]],
) -> None:
    port, _ = echo
    with BlackholeProxy("127.0.0.1", port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        proxy.cut(mode="hold")
        writer.write(b"held")
        await writer.drain()
        assert await _silent(reader)
        proxy.heal()
        assert await asyncio.wait_for(reader.readexactly(4), 10) == b"held"
        writer.close()


async def test_a_client_side_that_breaks_closes_the_target_side() -> None:
    """A client gone with a reset (or found gone by the proxy's keepalives, behind a
    kernel partition) must not leave the proxy holding the target's side open: a
    database would keep that session, and a run of partitions would exhaust it."""
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        closed.set()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        with BlackholeProxy("127.0.0.1", int(server.sockets[0].getsockname()[1])) as proxy:
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"hello")
            await writer.drain()
            sock = writer.get_extra_info("socket")
            # Linger 0: close() sends a reset, not a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            await asyncio.wait_for(closed.wait(), 10)
    finally:
        server.close()
