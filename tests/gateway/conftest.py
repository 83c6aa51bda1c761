"""Fixtures for the gateway tests: in-process gateways on 127.0.0.1:0, dead addresses."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from services.gateway.config import BACKEND_VARS, GatewaySettings
from services.gateway.server import GatewayServer, process_registry

TOKEN = "test-admin-token"
StartGateway = Callable[..., Awaitable[GatewayServer]]


@pytest.fixture
def dead_address() -> Iterator[str]:
    """An address that refuses connections: bound, never listening, held for the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
async def start_gateway(dead_address: str) -> AsyncIterator[StartGateway]:
    """Start in-process gateways; backends not given point at a dead address."""
    started: list[GatewayServer] = []

    async def start(backends: dict[str, str] | None = None, **overrides: Any) -> GatewayServer:
        addresses = {name: dead_address for name in BACKEND_VARS}
        addresses.update(backends or {})
        fields: dict[str, Any] = {"listen": "127.0.0.1:0", "admin_token": TOKEN}
        fields.update(overrides)
        settings = dataclasses.replace(GatewaySettings(), backends=addresses, **fields)
        server = GatewayServer(settings, process_registry())
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session
