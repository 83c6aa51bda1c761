"""The launcher's supervisor: start the children in order, announce, watch, stop in reverse."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TextIO

import aiohttp

from services.common.config import Env, parse_address
from services.launcher import prometheus
from services.launcher.children import Child, describe

REPO = Path(__file__).resolve().parents[2]
# Extra cache replicas listen this many ports above the previous one (50051, 50061, ...),
# clear of market_data's 50052 and sector's 50053 (and 9101, 9111, ... for metrics).
REPLICA_PORT_STEP = 10
POLL_SECONDS = 0.05
# market_data's and sector's near cache under `make run`, unless the environment says
# otherwise (64 MiB; the bound on staleness, ms).
NEAR_CACHE = {"CACHE_NEAR_CACHE_BYTES": "67108864", "CACHE_NEAR_MAX_STALENESS_MS": "1000"}


class LaunchError(Exception):
    """A child could not be started or died; the message says which and how."""


class StopRequested(Exception):  # noqa: N818 (a request, not an error)
    """A signal arrived while the children were still starting."""


def replica_address(address: str, index: int) -> str:
    """The address of cache replica `index` (0-based): the port shifted, port 0 kept."""
    host, port = parse_address(address)
    return address if port == 0 or index == 0 else f"{host}:{port + index * REPLICA_PORT_STEP}"


class Launcher:
    """Runs the four processes (and optionally Prometheus) until a signal or a death."""

    def __init__(self, options: argparse.Namespace, environ: Mapping[str, str], out: TextIO):
        self.options = options
        self.base_dir = Path(options.base_dir).resolve()
        self.var = self.base_dir / "var"
        self.run_dir = self.var / "run"
        self.out = out
        env = Env(environ)
        # Fresh per run unless the user chose one (then theirs is used and printed).
        self.token = env.optional("ADMIN_TOKEN") or secrets.token_urlsafe(24)
        self.common = dict(environ)
        self.common.update(ADMIN_TOKEN=self.token, PYTHONUNBUFFERED="1")
        self.common.setdefault("MARKET_PROVIDER", "synthetic")
        self.common.setdefault("LOG_FORMAT", "text")
        self.common.setdefault("CACHE_DB_URL", f"sqlite:///{self.var / 'cache.db'}")
        self.common["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), environ.get("PYTHONPATH", "")) if p
        )
        # Read now, so a malformed value fails before anything starts.
        self.cache_listen = env.address("CACHE_LISTEN", "127.0.0.1:50051")
        self.cache_metrics = env.address("CACHE_METRICS_LISTEN", "127.0.0.1:9101")
        self.prometheus_port = env.integer("PROMETHEUS_PORT", 0, minimum=0, maximum=65535)
        self.children: list[Child] = []
        self.stop_requested = asyncio.Event()
        self.hurry = asyncio.Event()
        self.prometheus_url: str | None = None
        self._width = 12

    def say(self, message: str) -> None:
        self._line("launcher", message)

    def _line(self, name: str, line: str) -> None:
        self.out.write(f"{name:<{self._width}} | {line}\n")
        self.out.flush()

    async def run(self) -> int:
        """Start everything, then wait; returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        code = 0
        try:
            await self._start_all()
            self._announce()
            code = await self._watch()
        except StopRequested:
            pass
        except LaunchError as exc:
            self.say(f"error: {exc}; stopping the others")
            code = 1
        finally:
            # Reverse start order: the gateway first (no new requests), the cache last.
            for child in reversed(self.children):
                exit_code, killed = await child.stop(self.options.stop_timeout, self.hurry)
                if killed:
                    self.say(f"{child.name} did not stop in time: killed")
                elif exit_code not in (0, -signal.SIGTERM) and self.stop_requested.is_set():
                    self.say(f"{child.name} stopped with {describe(exit_code)}")
        self.say("all processes stopped" + ("" if code == 0 else f"; exit code {code}"))
        return code

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stop_requested.is_set():
            self.say(f"{sig.name} again: killing the remaining processes now")
            self.hurry.set()
            return
        self.say(f"{sig.name} received: stopping every process")
        self.stop_requested.set()

    async def _watch(self) -> int:
        """Wait for a stop request (0) or any child's exit (1)."""
        stop = asyncio.create_task(self.stop_requested.wait())
        exits = {c.exited: c for c in self.children if c.exited is not None}
        done, _ = await asyncio.wait([stop, *exits], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        for task in done:
            child = exits.get(task)
            if child is not None and not self.stop_requested.is_set():
                self.say(f"{child.name} exited unexpectedly ({describe(task.result())})")
                return 1
        return 0

    async def _start_all(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        replicas = self.options.cache_replicas
        caches = [
            self._service(
                f"cache-{i + 1}" if replicas > 1 else "cache",
                "cache",
                CACHE_LISTEN=replica_address(self.cache_listen, i),
                CACHE_METRICS_LISTEN=replica_address(self.cache_metrics, i),
                CACHE_NODE_ID=f"cache-{i + 1}",
            )
            for i in range(replicas)
        ]
        await asyncio.gather(*(self._launch(c) for c in caches))
        # Everyone talks to the first replica; the client follows owner redirects.
        wired = {"CACHE_ADDR": caches[0].info["grpc"]}
        # market_data and sector read hot keys through the near cache (docs/near-cache.md).
        near = {**wired, **{k: self.common.get(k, v) for k, v in NEAR_CACHE.items()}}
        market = await self._launch(self._service("market_data", "market_data", **near))
        wired["MARKET_DATA_ADDR"] = market.info["grpc"]
        sector = await self._launch(
            self._service("sector", "sector", **near, MARKET_DATA_ADDR=market.info["grpc"])
        )
        wired["SECTOR_ADDR"] = sector.info["grpc"]
        await self._launch(self._service("gateway", "gateway", **wired))
        if self.options.prometheus:
            await self._start_prometheus()

    def _service(self, name: str, module: str, **overrides: str) -> Child:
        ready = self.run_dir / f"{name}.ready.json"
        env = {**self.common, **overrides, "MARKETCACHE_READY_FILE": str(ready)}
        return Child(name, [sys.executable, "-m", f"services.{module}"], env, ready)

    async def _launch(
        self, child: Child, ready: Callable[[], Awaitable[bool]] | None = None
    ) -> Child:
        """Start a child and poll, with a deadline, until it says it is ready."""
        if self.stop_requested.is_set():
            raise StopRequested
        self._width = max(self._width, len(child.name))
        await child.spawn(self.base_dir, self._line)
        self.children.append(child)
        deadline = time.monotonic() + self.options.ready_timeout
        while not (await ready() if ready else child.read_ready_file()):
            if child.exited is not None and child.exited.done():
                code = child.exited.result()
                raise LaunchError(f"{child.name} exited before it was ready ({describe(code)})")
            if self.stop_requested.is_set():
                raise StopRequested
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"{child.name} was not ready within {self.options.ready_timeout:.0f}s"
                )
            await asyncio.sleep(POLL_SECONDS)
        return child

    async def _start_prometheus(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            self.say(
                "--prometheus: no prometheus binary on PATH (`make deps` installs it); "
                "running without it"
            )
            return
        port = prometheus.pick_port(self.prometheus_port)
        url = f"http://127.0.0.1:{port}"
        storage = self.var / "prometheus"
        storage.mkdir(parents=True, exist_ok=True)
        metrics = {c.name: f"127.0.0.1:{c.info.get('metrics_port')}" for c in self.children}
        targets = {
            "cache": [v for k, v in metrics.items() if k.startswith("cache")],
            "market-data": [metrics["market_data"]],
            "sector": [metrics["sector"]],
            "gateway": [self._gateway_address()],
            "prometheus": [f"127.0.0.1:{port}"],
        }
        config = prometheus.write_config(targets, storage)
        argv = prometheus.argv(binary, config, storage / "data", port)
        child = Child("prometheus", argv, dict(self.common))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            await self._launch(child, lambda: prometheus.is_ready(session, url))
        self.prometheus_url = url

    def _gateway_address(self) -> str:
        return str(next(c.info["http"] for c in self.children if c.name == "gateway"))

    def _announce(self) -> None:
        gateway = f"http://{self._gateway_address()}"
        lines = [
            f"marketcache ready: {gateway}",
            f"  dashboard      {gateway}/dashboard",
            f"  API docs       {gateway}/docs  (Swagger UI over /openapi.json)",
            f"  REST gateway   {gateway}  (/openapi.json)",
        ]
        for child in self.children:
            if "grpc" in child.info:
                lines.append(
                    f"  {child.name:<14} grpc {child.info['grpc']}  metrics "
                    f"http://127.0.0.1:{child.info['metrics_port']}/metrics"
                )
        if self.prometheus_url:
            lines.append(f"  prometheus     {self.prometheus_url}")
        lines += [
            f"  admin token    {self.token}",
            f"  try: curl -s {gateway}/api/v1/sectors/snapshot",
            "       .venv/bin/marketcache --help   (the CLI; CACHE_ADDR and ADMIN_TOKEN as above)",
            f"       curl -s -X POST -H 'Authorization: Bearer {self.token}' "
            f"{gateway}/api/v1/sectors/cache/warm",
            "Ctrl-C stops everything.",
        ]
        # The same, machine-readable, for scripts and tests; written before the ready line.
        summary = {
            "gateway": gateway,
            "admin_token": self.token,
            "prometheus": self.prometheus_url,
            "children": {
                c.name: {**c.info, "pid": c.process.pid} for c in self.children if c.process
            },
        }
        path = self.run_dir / "launcher.json"
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)  # it holds the admin token
        path.write_text(json.dumps(summary, indent=2))
        for line in lines:
            self.say(line)
