"""Fixtures of the CLI tests: a started in-process cache server on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.cache.server import CacheServer
from tests.cache.harness import make_server


@pytest.fixture
async def server(tmp_path: Path, registry: CollectorRegistry) -> AsyncIterator[CacheServer]:
    srv = make_server(tmp_path, registry)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
