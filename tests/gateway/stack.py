"""Real backend processes for the gateway's integration tests, and a tiny HTTP client."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.processes import ServiceProcess, running, running_http

TOKEN = "gateway-test-token"
SYNTHETIC_DATE = "2025-01-15"  # pinned so the synthetic market is the same in every run


def cache_env(workdir: Path) -> dict[str, str]:
    return {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": f"sqlite:///{workdir / 'cache.db'}",
        "ADMIN_TOKEN": TOKEN,
    }


def market_data_env(cache_addr: str) -> dict[str, str]:
    return {
        "MARKET_DATA_LISTEN": "127.0.0.1:0",
        "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
        "MARKET_PROVIDER": "synthetic",
        "MARKET_SYNTHETIC_DATE": SYNTHETIC_DATE,
        "CACHE_ADDR": cache_addr,
    }


def sector_env(cache_addr: str, market_addr: str) -> dict[str, str]:
    return {
        "SECTOR_LISTEN": "127.0.0.1:0",
        "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_ADDR": cache_addr,
        "MARKET_DATA_ADDR": market_addr,
        "ADMIN_TOKEN": TOKEN,
    }


@contextmanager
def refusing_address() -> Iterator[str]:
    """An address that refuses connections: bound, never listening, held while in use."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class Stack:
    """Running processes: the gateway and whichever backends were started."""

    gateway: ServiceProcess
    backends: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.gateway.http_url


@contextmanager
def gateway_stack(
    workdir: Path,
    *,
    market_data: bool = False,
    sector: bool = False,
    gateway_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """Cache (always), optionally market_data and sector, and a gateway in front of them.

    Backends not started are given an address that refuses connections.
    """
    with ExitStack() as stack:
        cache = stack.enter_context(running("cache", cache_env(workdir), workdir / "cache"))
        started = {"cache": cache}
        market_addr = stack.enter_context(refusing_address())
        sector_addr = stack.enter_context(refusing_address())
        if market_data:
            proc = stack.enter_context(
                running("market_data", market_data_env(cache.grpc_address), workdir / "md")
            )
            started["market_data"], market_addr = proc, proc.grpc_address
        if sector:
            proc = stack.enter_context(
                running("sector", sector_env(cache.grpc_address, market_addr), workdir / "sector")
            )
            started["sector"], sector_addr = proc, proc.grpc_address
        env = {
            "GATEWAY_LISTEN": "127.0.0.1:0",
            "CACHE_ADDR": cache.grpc_address,
            "MARKET_DATA_ADDR": market_addr,
            "SECTOR_ADDR": sector_addr,
            "ADMIN_TOKEN": TOKEN,
            **(gateway_env or {}),
        }
        gateway = stack.enter_context(running_http("gateway", env, workdir / "gateway"))
        yield Stack(gateway=gateway, backends=started)


@dataclass
class Reply:
    """An HTTP answer: status, headers, and the body as JSON (or text)."""

    status: int
    headers: Mapping[str, str]
    body: Any


def request(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    raw: bytes | None = None,
) -> Reply:
    """One HTTP request with urllib (no client-side URL rewriting: the path is sent as is)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, method=method, data=data)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            return _reply(reply.status, reply.headers, reply.read())
    except urllib.error.HTTPError as err:
        return _reply(err.code, err.headers, err.read())


def _reply(status: int, headers: Any, payload: bytes) -> Reply:
    content_type = headers.get("Content-Type", "")
    body: Any = payload.decode()
    if content_type.startswith("application/json"):
        body = json.loads(payload)
    return Reply(status, dict(headers.items()), body)
