"""Start service processes that only speak TLS, and open channels to them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.security.certs import Leaf
from tests.support.processes import ServiceProcess, start_service


def credentials(ca: bytes, leaf: Leaf | None) -> grpc.ChannelCredentials:
    """Client credentials trusting `ca`, presenting `leaf` when given (mTLS)."""
    if leaf is None:
        return grpc.ssl_channel_credentials(root_certificates=ca)
    cert, key = leaf.pem()
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def tls_channel(address: str, ca: bytes, leaf: Leaf | None = None) -> grpc.Channel:
    return grpc.secure_channel(address, credentials(ca, leaf))


def _wait_tls_ready(proc: ServiceProcess, ca: bytes, leaf: Leaf | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not proc.ready_file.exists():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            raise AssertionError(f"{proc.name} not ready (TLS):\n{proc.log()}")
        time.sleep(0.02)
    info = json.loads(proc.ready_file.read_text())
    proc.grpc_address = str(info["grpc"])
    proc.metrics_port = int(info.get("metrics_port") or 0)
    with tls_channel(proc.grpc_address, ca, leaf) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                proc.stop()
                raise AssertionError(f"{proc.name} not SERVING over TLS:\n{proc.log()}")
            time.sleep(0.05)


@contextmanager
def running_tls(
    name: str,
    env: Mapping[str, str],
    workdir: Path,
    *,
    ca: bytes,
    leaf: Leaf | None,
    timeout: float = 30.0,
) -> Iterator[ServiceProcess]:
    """A gRPC service that serves TLS only, waited for over TLS (with `leaf` for mTLS)."""
    proc = start_service(name, env, workdir, wait=False)
    try:
        _wait_tls_ready(proc, ca, leaf, timeout)
        yield proc
    finally:
        proc.stop()
