"""Server processes the harness runs: the floor, marketcache services, Redis servers.

Every server runs in its own process so that client and server never share a GIL.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis
import redis.asyncio

from tests.support.processes import REPO, ServiceProcess, wait_ready

# Which Redis database and key prefix the harness may use on a shared server; it
# deletes exactly these keys afterwards and never flushes anything.
REDIS_DB = 9
REDIS_PREFIX = "mcbench:"


class BenchError(RuntimeError):
    """The harness could not measure something it should have (a bug, not a slow result)."""


def spawn(
    module_args: list[str], env: Mapping[str, str], workdir: Path, label: str
) -> ServiceProcess:
    """Start `python -m <module_args...>` with MARKETCACHE_READY_FILE set; do not wait."""
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / f"{label}.ready.json"
    ready.unlink(missing_ok=True)
    log_path = workdir / f"{label}.log"
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(workdir)),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "MARKETCACHE_READY_FILE": str(ready),
        **env,
    }
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(
            [sys.executable, "-m", *module_args],
            cwd=str(REPO),
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ServiceProcess(
        name=label, popen=popen, log_path=log_path, ready_file=ready, env=full_env
    )


def read_ready(proc: ServiceProcess, timeout: float = 30.0) -> dict[str, object]:
    """Poll for the process's ready file (what it bound) within a deadline."""
    deadline = time.monotonic() + timeout
    while not proc.ready_file.exists():
        if proc.popen.poll() is not None:
            raise BenchError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()}")
        if time.monotonic() > deadline:
            proc.stop()
            raise BenchError(f"{proc.name} not ready within {timeout}s:\n{proc.log()}")
        time.sleep(0.01)
    info: dict[str, object] = json.loads(proc.ready_file.read_text())
    proc.extra = info
    return info


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
