"""The whole system on ephemeral ports, in front of the fake upstream with a 100 ms delay."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.servers import BenchError, cache_env
from harness.process import ServiceProcess, spawn
from harness.readiness import read_ready_file
from harness.services import start_service

UPSTREAM_DELAY_MS = 100
FMP_KEY = "bench-dummy-key"


@dataclass
class MarketStack:
    """fake upstream -> market_data (fmp) -> sector -> gateway, all on one cache process."""

    token: str
    upstream_url: str = ""
    cache_addr: str = ""
    market_data_addr: str = ""
    gateway_url: str = ""
    procs: list[ServiceProcess] = field(default_factory=list)

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def upstream_calls(self, session: aiohttp.ClientSession) -> int:
        """Calls the fake upstream has answered since its last reset."""
        async with session.get(f"{self.upstream_url}/_control/calls") as reply:
            reply.raise_for_status()
            return int((await reply.json())["total"])

    async def reset_upstream(self, session: aiohttp.ClientSession) -> None:
        async with session.post(f"{self.upstream_url}/_control/reset") as reply:
            reply.raise_for_status()

    async def clear_prefix(self, session: aiohttp.ClientSession, prefix: str) -> None:
        """Admin Clear of one cache prefix through the REST shim."""
        url = f"{self.gateway_url}/api/v1/cache/prefixes/{prefix}"
        async with session.delete(url, headers=self.admin_headers) as reply:
            if reply.status != 200:
                raise BenchError(f"DELETE {url}: {reply.status} {await reply.text()}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def start(workdir: Path, extra_env: Mapping[str, str] | None = None) -> MarketStack:
    """Start the five processes in dependency order; stops what started if one fails.

    `extra_env` goes to market_data and sector (the near-cache bench turns it on there).
    """
    stack = MarketStack(token=secrets.token_urlsafe(16))
    try:
        _start(stack, workdir, dict(extra_env or {}))
    except BaseException:
        stack.stop()
        raise
    return stack


def _start(stack: MarketStack, workdir: Path, extra_env: dict[str, str]) -> None:
    common = {"ADMIN_TOKEN": stack.token, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "text"}
    delay = str(UPSTREAM_DELAY_MS)
    ready = str(workdir / "upstream.ready.json")  # where spawn() expects the label's file
    argv = ["harness.fakes.upstream", "--port", "0", "--delay-ms", delay, "--api-key", FMP_KEY]
    upstream = spawn([*argv, "--ready-file", ready], {}, workdir, "upstream")
    stack.procs.append(upstream)
    stack.upstream_url = str(read_ready_file(upstream)["url"])

    cache = start_service(
        "cache", {**cache_env(workdir / "cache-stack"), **common}, workdir, label="cache-stack"
    )
    stack.procs.append(cache)
    stack.cache_addr = cache.grpc_address

    market = start_service(
        "market_data",
        {
            **common,
            "MARKET_DATA_LISTEN": "127.0.0.1:0",
            "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
            "MARKET_PROVIDER": "fmp",
            "FMP_BASE_URL": stack.upstream_url,
            "FMP_API_KEY": FMP_KEY,
            # The fake upstream has no quota; a client-side limit would only add waits.
            "MARKET_RATE_LIMIT_PER_MINUTE": "0",
            "CACHE_ADDR": stack.cache_addr,
            **extra_env,
        },
        workdir,
    )
    stack.procs.append(market)
    stack.market_data_addr = market.grpc_address

    sector = start_service(
        "sector",
        {
            **common,
            "SECTOR_LISTEN": "127.0.0.1:0",
            "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
            "MARKET_DATA_ADDR": stack.market_data_addr,
            "CACHE_ADDR": stack.cache_addr,
            **extra_env,
        },
        workdir,
    )
    stack.procs.append(sector)

    gateway = start_service(
        "gateway",
        {
            **common,
            "GATEWAY_LISTEN": "127.0.0.1:0",
            "CACHE_ADDR": stack.cache_addr,
            "MARKET_DATA_ADDR": stack.market_data_addr,
            "SECTOR_ADDR": sector.grpc_address,
        },
        workdir,
        wait=False,
    )
    stack.procs.append(gateway)
    # The gateway writes {"http": address} (no gRPC port), so wait on its ready file.
    stack.gateway_url = f"http://{read_ready_file(gateway)['http']}"


async def wait_ready(stack: MarketStack, session: aiohttp.ClientSession, within: float) -> None:
    """Poll the gateway's /readyz (every backend healthy) within a deadline."""
    deadline = time.monotonic() + within
    while True:
        try:
            async with session.get(f"{stack.gateway_url}/readyz") as reply:
                if reply.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"gateway at {stack.gateway_url} not ready within {within}s")
        await asyncio.sleep(0.05)
