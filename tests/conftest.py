"""Fixtures every test layer shares."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import grpc
import pytest
from prometheus_client import CollectorRegistry

from tests.support.postgres import fresh_database


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh Prometheus registry: no test sees another's counters."""
    return CollectorRegistry(auto_describe=True)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh PostgreSQL database, dropped after the test."""
    with fresh_database() as url:
        yield url


def free_port() -> int:
    """A port nobody listens on right now (for processes that cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def grpc_server(
    add_servicers: Callable[[grpc.aio.Server], None],
) -> AsyncIterator[tuple[str, grpc.aio.Server]]:
    """An in-process gRPC server on 127.0.0.1:0 serving what `add_servicers` adds:
    its address and the server (stopped on exit, if the test has not stopped it)."""
    server = grpc.aio.server()
    add_servicers(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", server
    finally:
        await server.stop(None)
