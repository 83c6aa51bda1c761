"""Builds and runs the gateway's HTTP server; nothing happens on import."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from services.common.config import parse_address
from services.gateway.app import Gateway, build_app
from services.gateway.config import GatewaySettings

log = logging.getLogger(__name__)

# How long in-flight requests may finish after SIGTERM before they are cut.
DRAIN_SECONDS = 10.0


def process_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors (the client's defaults)."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class GatewayServer:
    """The gateway's aiohttp server on GATEWAY_LISTEN, stopped gracefully."""

    def __init__(self, settings: GatewaySettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.gateway = Gateway(settings, registry)
        self.app = build_app(self.gateway)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def address(self) -> str:
        host, _ = parse_address(self.settings.listen)
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def start(self) -> None:
        """Listen, open the backend channels, then write the ready file."""
        host, port = parse_address(self.settings.listen, "GATEWAY_LISTEN")
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=DRAIN_SECONDS
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        # The port bound (the one picked for port 0), from aiohttp's public addresses.
        self.port = int(runner.addresses[0][1])
        log.info(
            "gateway listening",
            extra={"http": self.address, "backends": self.settings.backends},
        )
        self._write_ready_file()

    def _write_ready_file(self) -> None:
        # Tests and the launcher start the gateway on port 0; this file says where it went.
        path = os.environ.get("MARKETCACHE_READY_FILE")
        if not path:
            return
        tmp = Path(path + ".tmp")
        tmp.write_text(json.dumps({"http": self.address, "pid": os.getpid()}))
        tmp.replace(path)

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish, close the channels."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def run_until_signal(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        log.info("gateway stopping: draining for up to %.1fs", DRAIN_SECONDS)
        await self.stop()
        log.info("gateway stopped")
