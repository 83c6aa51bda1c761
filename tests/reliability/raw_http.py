"""HTTP/1.1 requests written byte by byte, for inputs no well-behaved client library sends."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

# Every request must be answered within this; a longer wait counts as a hang.
DEADLINE = 10.0


@dataclass(frozen=True)
class RawReply:
    """The status and body of an answer, and how long it took."""

    status: int
    body: bytes
    seconds: float


class HangError(AssertionError):
    """The server did not answer within the deadline."""


def build(
    method: str,
    target: str,
    body: bytes | None = None,
    headers: Iterable[str | bytes] = (),
    *,
    length: bool = True,
) -> bytes:
    """A request with Host and Connection: close; Content-Length unless `length` is false."""
    lines: list[bytes] = [f"{method} {target} HTTP/1.1".encode("latin-1"), b"Host: gateway"]
    lines += [h if isinstance(h, bytes) else h.encode("latin-1") for h in headers]
    lines.append(b"Connection: close")
    if body is not None and length:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def chunked(body: bytes, size: int = 65_536) -> bytes:
    """`body` in Transfer-Encoding: chunked framing."""
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def send(address: str, request: bytes, deadline: float = DEADLINE) -> RawReply:
    """Send `request` on a fresh connection and read the answer until the server closes."""
    host, _, port = address.rpartition(":")
    started = time.monotonic()
    received = bytearray()
    with socket.create_connection((host, int(port)), timeout=deadline) as sock:
        # The server may refuse and close before reading everything: read its answer anyway.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        while True:
            left = deadline - (time.monotonic() - started)
            if left <= 0:
                raise HangError(f"no complete answer within {deadline}s: {bytes(received[:200])!r}")
            sock.settimeout(left)
            try:
                chunk = sock.recv(65_536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            if _complete(received):
                break  # answered; the server may keep reading what the client announced
    seconds = time.monotonic() - started
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ")
    if len(parts) < 2 or not parts[1].isdigit():
        raise AssertionError(f"not an HTTP answer: {bytes(received[:200])!r}")
    return RawReply(int(parts[1]), body, seconds)


def _complete(received: bytes | bytearray) -> bool:
    """Whether `received` holds the headers and the whole Content-Length body."""
    head, sep, body = bytes(received).partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False
