"""Restart to serving: time from process start to SERVING, and to the first Get hit."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.servers import BenchError
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from tests.support.processes import ServiceProcess, start_service

POLL_SECONDS = 0.002


@dataclass(frozen=True)
class RestartTiming:
    """Seconds from spawning the process."""

    serving: float
    first_hit: float | None
    # UNAVAILABLE answers ("retry shortly") the probe retried before its hit.
    unavailable: int = 0


def time_start(
    env: Mapping[str, str], workdir: Path, label: str, hit_key: str | None, timeout: float = 300.0
) -> tuple[RestartTiming, ServiceProcess]:
    """Start a cache process and time it to SERVING and (if `hit_key`) to a Get hit on it."""
    start = time.perf_counter()
    proc = start_service("cache", env, workdir, wait=False, label=label)
    deadline = start + timeout
    try:
        address = _wait_ready_file(proc, deadline)
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                _check(proc, deadline)
                time.sleep(POLL_SECONDS)
            serving = time.perf_counter() - start
            first_hit = None
            unavailable = 0
            if hit_key is not None:
                stub = cache_pb2_grpc.CacheServiceStub(channel)
                request = cache_pb2.GetRequest(key=hit_key)
                while True:
                    try:
                        if stub.Get(request, timeout=30.0).found:
                            break
                    except grpc.RpcError as exc:
                        # UNAVAILABLE says "retry shortly": a client would, so the
                        # probe does and counts it; any other error is a failure.
                        if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                            raise
                        unavailable += 1
                    _check(proc, deadline)
                    time.sleep(POLL_SECONDS)
                first_hit = time.perf_counter() - start
    except BaseException:
        proc.stop()
        raise
    proc.grpc_address = address
    return RestartTiming(serving, first_hit, unavailable), proc


def _wait_ready_file(proc: ServiceProcess, deadline: float) -> str:
    # The process binds port 0, so its address is known only from the ready file.
    while not proc.ready_file.exists():
        _check(proc, deadline)
        time.sleep(POLL_SECONDS)
    return str(json.loads(proc.ready_file.read_text())["grpc"])


def _check(proc: ServiceProcess, deadline: float) -> None:
    if proc.popen.poll() is not None:
        raise BenchError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-3000:]}")
    if time.perf_counter() > deadline:
        raise BenchError(f"{proc.name} did not serve in time:\n{proc.log()[-3000:]}")
