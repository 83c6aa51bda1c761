"""Server bootstrap every process shares: health, reflection, metrics, TLS, graceful stop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from aiohttp import web
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.common.config import Env, parse_address
from services.common.grpc_metrics import ServerMetrics
from services.common.reflection import enable_reflection
from services.common.tls import TlsConfig
from services.common.unary_calls import UnaryCalls

log = logging.getLogger(__name__)

# Calls grpc core may hold before a handler takes them (see GrpcProcess).
_MAX_PENDING = 100_000
ServingStatus = health_pb2.HealthCheckResponse.ServingStatus.ValueType
Register = Callable[[grpc.aio.Server], None]
StopHook = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ServerOptions:
    """How a process serves gRPC and its metrics."""

    name: str
    listen: str
    metrics_listen: str | None
    # Largest request or response message, bytes; larger is RESOURCE_EXHAUSTED.
    max_message_bytes: int = 4 * 1024 * 1024
    # Concurrent RPCs beyond this are refused with RESOURCE_EXHAUSTED.
    max_concurrent_rpcs: int | None = 1024
    # How long in-flight RPCs may run after SIGTERM before they are cancelled.
    drain_seconds: float = 10.0
    tls: TlsConfig = field(default_factory=lambda: TlsConfig(None, None, None, False))

    @classmethod
    def from_env(  # noqa: PLR0917
        cls,
        env: Env,
        name: str,
        listen_var: str,
        listen_default: str,
        metrics_var: str | None,
        metrics_default: str | None,
    ) -> ServerOptions:
        metrics = (
            env.address(metrics_var, metrics_default) if metrics_var and metrics_default else None
        )
        return cls(
            name=name,
            listen=env.address(listen_var, listen_default),
            metrics_listen=metrics,
            max_message_bytes=env.integer(
                "GRPC_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, minimum=1024, maximum=1024 * 1024 * 1024
            ),
            max_concurrent_rpcs=env.integer("GRPC_MAX_CONCURRENT_RPCS", 1024, minimum=1),
            drain_seconds=env.number("GRPC_DRAIN_SECONDS", 10.0, minimum=0.0, maximum=300.0),
            tls=TlsConfig.from_env(env),
        )


class GrpcProcess:
    """A gRPC server with health, reflection (v1, v1alpha), a metrics endpoint; stops gracefully.

    Health stays NOT_SERVING until `set_serving(True)`, and goes back to
    NOT_SERVING as soon as a stop begins, so load balancers drain us first.
    """

    def __init__(
        self,
        options: ServerOptions,
        registry: CollectorRegistry,
        services: Sequence[ServiceDescriptor],
        register: Register,
    ) -> None:
        self.options = options
        self.registry = registry
        self._services = list(services)
        self._metrics = ServerMetrics(registry)
        self._metrics.initialize(self._services)
        self.health = health_aio.HealthServicer()
        grpc_options: list[tuple[str, int]] = [
            ("grpc.max_receive_message_length", options.max_message_bytes),
            ("grpc.max_send_message_length", options.max_message_bytes),
            ("grpc.so_reuseport", 0),
            # #12: grpc core CANCELs calls queued past max_pending_requests (default
            # 1000) before any handler or interceptor sees them: a burst of 2,000
            # unary calls on one channel lost ~10% that way (docs/grpc-bursts.md).
            # Pending calls are cheap; overload is refused, counted, by the limit below.
            ("grpc.server.max_pending_requests", _MAX_PENDING),
            ("grpc.server.max_pending_requests_hard_limit", _MAX_PENDING),
        ]
        # No interceptors (#22): metrics, the decoding check and error mapping are one
        # wrapper per unary method, made as each service registers (UnaryCalls).
        self.server = grpc.aio.server(options=grpc_options)
        registrar = UnaryCalls(self._metrics, options.max_concurrent_rpcs).registrar(self.server)
        register(registrar)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, registrar)
        names = [s.full_name for s in self._services]
        enable_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name], self.server
        )
        self._stop_hooks: list[StopHook] = []
        self._metrics_runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self.grpc_port = 0
        self.metrics_port = 0

    @property
    def address(self) -> str:
        host, _ = parse_address(self.options.listen)
        return f"{host}:{self.grpc_port}"

    def on_stop(self, hook: StopHook) -> None:
        """Run `hook` after in-flight RPCs drained (flush writes, close engines, channels)."""
        self._stop_hooks.append(hook)

    async def start(self) -> None:
        await self._set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
        tls = self.options.tls
        if tls.server_enabled:
            self.grpc_port = self.server.add_secure_port(
                self.options.listen, tls.server_credentials()
            )
        else:
            self.grpc_port = self.server.add_insecure_port(self.options.listen)
        await self.server.start()
        if self.options.metrics_listen:
            await self._start_metrics(self.options.metrics_listen)
        log.info(
            "%s listening",
            self.options.name,
            extra={
                "grpc": self.address,
                "metrics_port": self.metrics_port,
                "tls": tls.server_enabled,
                "mtls": tls.client_auth,
            },
        )

    async def _start_metrics(self, listen: str) -> None:
        host, port = parse_address(listen)
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._metrics_runner = runner
        # The port bound (the one picked for port 0), from aiohttp's public addresses.
        self.metrics_port = int(runner.addresses[0][1])

    async def _serve_metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def set_serving(self, serving: bool) -> None:
        await self._set_all(
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        if serving:
            self._write_ready_file()

    async def _set_all(
        self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType
    ) -> None:
        await self.health.set("", status)
        for service in self._services:
            await self.health.set(service.full_name, status)

    def _write_ready_file(self) -> None:
        # Tests and the launcher start processes on port 0; this file tells them
        # where the process ended up listening, once it is ready.
        path = os.environ.get("MARKETCACHE_READY_FILE")
        if not path:
            return
        tmp = Path(path + ".tmp")
        tmp.write_text(
            json.dumps(
                {"grpc": self.address, "metrics_port": self.metrics_port, "pid": os.getpid()}
            )
        )
        tmp.replace(path)

    async def stop(self) -> None:
        """NOT_SERVING, drain in-flight RPCs, run the stop hooks, close the metrics port."""
        await self._set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(self.options.drain_seconds)
        for hook in self._stop_hooks:
            try:
                await hook()
            except Exception:
                log.exception("stop hook failed")
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
            self._metrics_runner = None

    async def run_until_signal(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        self._stopping = stopping
        await stopping.wait()
        log.info(
            "%s stopping: draining for up to %.1fs", self.options.name, self.options.drain_seconds
        )
        await self.stop()
        log.info("%s stopped", self.options.name)

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
