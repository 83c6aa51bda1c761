"""Restart to serving: time from process start to SERVING, and to the first Get hit."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.servers import BenchError
from harness.process import ServiceProcess
from harness.readiness import read_ready_file, wait_serving
from harness.services import start_service
from marketcache.v1 import cache_pb2, cache_pb2_grpc

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
        address = str(read_ready_file(proc, timeout, every=POLL_SECONDS)["grpc"])
        with grpc.insecure_channel(address) as channel:
            # The health checks' channel, kept open: the first Get is timed on the
            # connection they made, as a client already connected would see it.
            wait_serving(
                address,
                deadline - time.perf_counter(),
                channel=lambda _: nullcontext(channel),
                proc=proc,
                every=POLL_SECONDS,
            )
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


def _check(proc: ServiceProcess, deadline: float) -> None:
    if proc.popen.poll() is not None:
        raise BenchError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-3000:]}")
    if time.perf_counter() > deadline:
        raise BenchError(f"{proc.name} did not serve in time:\n{proc.log()[-3000:]}")
