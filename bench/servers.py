"""Server processes the harness runs: the floor, marketcache services, Redis servers.

Every server runs in its own process so that client and server never share a GIL.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis
import redis.asyncio

from harness.process import REPO, ServiceProcess, spawn
from harness.readiness import wait_ready

# Which Redis database and key prefix the harness may use on a shared server; it
# deletes exactly these keys afterwards and never flushes anything.
REDIS_DB = 9
REDIS_PREFIX = "mcbench:"


class BenchError(RuntimeError):
    """The harness could not measure something it should have (a bug, not a slow result)."""


def start_module(
    module: str, env: Mapping[str, str], workdir: Path, label: str, timeout: float = 30.0
) -> ServiceProcess:
    """Start a gRPC server module (`python -m <module>`) and wait until it is SERVING."""
    proc = spawn([module], env, workdir, label)
    wait_ready(proc, timeout=timeout)
    return proc


def start_floor(workdir: Path, label: str = "floor") -> ServiceProcess:
    """The floor server (bench.floor) in its own process."""
    return start_module("bench.floor", {}, workdir, label)


@dataclass
class RedisServer:
    """A Redis server the harness talks to: the shared one, or one it started."""

    host: str
    port: int
    db: int
    popen: subprocess.Popen[bytes] | None
    description: str

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def sync_client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, db=self.db)

    def async_client(self) -> redis.asyncio.Redis:
        return redis.asyncio.Redis(host=self.host, port=self.port, db=self.db)

    def used_memory_rss(self) -> int:
        """Redis's own view of its resident memory, bytes."""
        info = self.sync_client().info("memory")
        return int(info["used_memory_rss"])

    def delete_own_keys(self) -> int:
        """Delete the harness's keys (REDIS_PREFIX) and nothing else."""
        client = self.sync_client()
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=REDIS_PREFIX + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
        client.close()
        return deleted

    def stop(self) -> None:
        """Stop the server if the harness started it (the shared one is left alone)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def redis_binary() -> str | None:
    """The redis-server executable, if installed."""
    return shutil.which("redis-server")


def shared_redis(workdir: Path) -> RedisServer | None:
    """The Redis on 127.0.0.1:6379, else one started on a free port, else None (absent)."""
    try:
        client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=2)
        client.ping()
        client.close()
        return RedisServer("127.0.0.1", 6379, REDIS_DB, None, "shared redis on 127.0.0.1:6379")
    except redis.RedisError:
        pass
    if redis_binary() is None:
        return None
    server = start_redis(workdir / "redis-shared", "--save", "", "--appendonly", "no")
    server.description = f"redis-server started by the harness on port {server.port}"
    return server


def start_redis(workdir: Path, *args: str, timeout: float = 20.0) -> RedisServer:
    """Start a private redis-server on a free port with its own directory."""
    binary = redis_binary()
    if binary is None:
        raise BenchError("redis-server is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = (workdir / "redis.log").open("ab")
    popen = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = RedisServer("127.0.0.1", port, 0, popen, f"redis-server on port {port}")
    deadline = time.monotonic() + timeout
    client = server.sync_client()
    while True:
        try:
            client.ping()
            client.close()
            return server
        except redis.ConnectionError:
            if popen.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise BenchError(f"redis-server on port {port} did not start") from None
            time.sleep(0.02)


def _free_port() -> int:
    # redis-server cannot listen on port 0 and report back, so pick one now.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_available(name: str) -> bool:
    """Whether `python -m services.<name>` exists in this checkout."""
    return (REPO / "services" / name / "__main__.py").exists()


def cache_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment of a marketcache cache process on ephemeral ports with SQLite in `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": f"sqlite:///{data_dir / 'cache.db'}",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        **extra,
    }
