"""Start real marketcache processes (`python -m services.<name>`) on ephemeral ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServiceProcess:
    """A running service subprocess and where it listens."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    ready_file: Path
    env: dict[str, str]
    grpc_address: str = ""
    metrics_port: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    # host:port of an HTTP process (the gateway), from its ready file's "http" key.
    http_address: str = ""

    @property
    def http_url(self) -> str:
        return f"http://{self.http_address}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL and reap: no flush, no drain."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for a graceful exit; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM") from None

    def stop(self) -> None:
        """Best-effort cleanup: SIGTERM, then SIGKILL."""
        if self.popen.poll() is not None:
            return
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                return
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def start_service(
    name: str,
    env: Mapping[str, str],
    workdir: Path,
    *,
    wait: bool = True,
    timeout: float = 30.0,
    label: str | None = None,
) -> ServiceProcess:
    """Start `python -m services.<name>` with `env` over a clean base environment.

    The process writes MARKETCACHE_READY_FILE (its bound addresses) once it
    serves; with `wait`, this returns only after that and a SERVING health check.
    """
    label = label or name
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / f"{label}.ready.json"
    ready.unlink(missing_ok=True)
    log_path = workdir / f"{label}.log"
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(workdir)),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "LOG_FORMAT": "text",
        "MARKETCACHE_READY_FILE": str(ready),
    }
    full_env.update(env)
    log_file = log_path.open("ab")
    popen = subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"],
        cwd=str(REPO),
        env=full_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log_file.close()
    proc = ServiceProcess(
        name=label, popen=popen, log_path=log_path, ready_file=ready, env=full_env
    )
    if wait:
        wait_ready(proc, timeout=timeout)
    return proc


def wait_ready(proc: ServiceProcess, timeout: float = 30.0) -> None:
    """Poll for the ready file, then for grpc.health.v1 SERVING, within a deadline."""
    deadline = time.monotonic() + timeout
    info = _wait_ready_file(proc, deadline, timeout)
    proc.grpc_address = str(info["grpc"])
    proc.metrics_port = int(info.get("metrics_port") or 0)
    proc.extra = info
    wait_serving(proc.grpc_address, deadline - time.monotonic())


def _wait_ready_file(proc: ServiceProcess, deadline: float, timeout: float) -> dict[str, Any]:
    """Poll for the process's ready file within the deadline; fail early if it exits."""
    while not proc.ready_file.exists():
        if proc.popen.poll() is not None:
            raise AssertionError(
                f"{proc.name} exited with {proc.popen.returncode} before ready:\n{proc.log()}"
            )
        if time.monotonic() > deadline:
            proc.stop()
            raise AssertionError(f"{proc.name} not ready within {timeout}s:\n{proc.log()}")
        time.sleep(0.02)
    info: dict[str, Any] = json.loads(proc.ready_file.read_text())
    return info


def wait_serving(address: str, timeout: float) -> None:
    """Poll the standard health service until SERVING."""
    deadline = time.monotonic() + max(timeout, 1.0)
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{address} not SERVING within {timeout:.1f}s")
            time.sleep(0.02)


@contextmanager
def running(
    name: str, env: Mapping[str, str], workdir: Path, **kwargs: object
) -> Iterator[ServiceProcess]:
    """A service process for the duration of a `with` block, always cleaned up."""
    proc = start_service(name, env, workdir, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        proc.stop()


def start_http_service(
    name: str,
    env: Mapping[str, str],
    workdir: Path,
    *,
    wait: bool = True,
    timeout: float = 30.0,
    label: str | None = None,
) -> ServiceProcess:
    """Start an HTTP process (`python -m services.gateway`) like start_service.

    Its ready file is `{"http": "host:port", "pid": n}`; with `wait`, this returns
    once that file exists and GET /healthz answers 200.
    """
    proc = start_service(name, env, workdir, wait=False, timeout=timeout, label=label)
    if wait:
        wait_http_ready(proc, timeout=timeout)
    return proc


def wait_http_ready(proc: ServiceProcess, timeout: float = 30.0) -> None:
    """Poll for the ready file's "http" address, then for GET /healthz 200, within a deadline."""
    deadline = time.monotonic() + timeout
    info = _wait_ready_file(proc, deadline, timeout)
    proc.http_address = str(info["http"])
    proc.extra = info
    while True:
        try:
            with urllib.request.urlopen(f"{proc.http_url}/healthz", timeout=1.0) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            proc.stop()
            raise AssertionError(f"{proc.name} /healthz not 200 within {timeout}s:\n{proc.log()}")
        time.sleep(0.02)


@contextmanager
def running_http(
    name: str, env: Mapping[str, str], workdir: Path, **kwargs: object
) -> Iterator[ServiceProcess]:
    """An HTTP service process for the duration of a `with` block, always cleaned up."""
    proc = start_http_service(name, env, workdir, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        proc.stop()
