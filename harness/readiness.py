"""Wait, within a deadline, until a started process serves: ready file, then health."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.process import ServiceProcess

# Opens a channel to an address, closed when its `with` block ends: plain by
# default, TLS for a process that serves only TLS, or an already open channel
# wrapped in contextlib.nullcontext to keep it (and its connection) afterwards.
ChannelFactory = Callable[[str], AbstractContextManager[grpc.Channel]]


class NotReadyError(AssertionError):
    """A process exited or missed its deadline before serving (a test failure, with its log)."""


def plain_channel(address: str) -> grpc.Channel:
    """An insecure channel to `address` (the default ChannelFactory)."""
    return grpc.insecure_channel(address)


def read_ready_file(
    proc: ServiceProcess, timeout: float = 30.0, every: float = 0.02
) -> dict[str, Any]:
    """Poll for the process's ready file (what it bound), fail early if it exits; its content.

    The process binds port 0, so where it listens is known only from this file.
    """
    deadline = time.monotonic() + timeout
    while not proc.ready_file.exists():
        _check(proc, deadline, f"not ready within {timeout}s")
        time.sleep(every)
    info: dict[str, Any] = json.loads(proc.ready_file.read_text())
    proc.extra = info
    return info


def wait_serving(
    address: str,
    timeout: float,
    *,
    channel: ChannelFactory = plain_channel,
    proc: ServiceProcess | None = None,
    every: float = 0.02,
) -> None:
    """Poll grpc.health.v1 at `address` until SERVING, over a channel from `channel`.

    With `proc`, fail as soon as it exits and show its log on failure.
    """
    deadline = time.monotonic() + max(timeout, 1.0)
    with channel(address) as opened:
        stub = health_pb2_grpc.HealthStub(opened)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if proc is None:
                if time.monotonic() > deadline:
                    raise NotReadyError(f"{address} not SERVING within {timeout:.1f}s")
            else:
                _check(proc, deadline, f"{address} not SERVING within {timeout:.1f}s")
            time.sleep(every)


def wait_ready(
    proc: ServiceProcess, timeout: float = 30.0, channel: ChannelFactory = plain_channel
) -> None:
    """The ready file, then SERVING over `channel`, within one deadline; fills in the addresses."""
    deadline = time.monotonic() + timeout
    info = read_ready_file(proc, timeout)
    proc.grpc_address = str(info["grpc"])
    proc.metrics_port = int(info.get("metrics_port") or 0)
    wait_serving(proc.grpc_address, deadline - time.monotonic(), channel=channel, proc=proc)


def wait_http_ready(proc: ServiceProcess, timeout: float = 30.0) -> None:
    """The ready file's "http" address, then GET /healthz 200, within one deadline."""
    deadline = time.monotonic() + timeout
    info = read_ready_file(proc, timeout)
    proc.http_address = str(info["http"])
    while True:
        try:
            with urllib.request.urlopen(f"{proc.http_url}/healthz", timeout=1.0) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        _check(proc, deadline, f"/healthz not 200 within {timeout}s")
        time.sleep(0.02)


def _check(proc: ServiceProcess, deadline: float, late: str) -> None:
    """NotReadyError (with the log) if `proc` has exited or `deadline` has passed; it is stopped."""
    if proc.popen.poll() is not None:
        raise NotReadyError(
            f"{proc.name} exited with {proc.popen.returncode} before ready:\n{proc.log()}"
        )
    if time.monotonic() > deadline:
        proc.stop()
        raise NotReadyError(f"{proc.name} {late}:\n{proc.log()}")
