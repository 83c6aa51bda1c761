"""Start service processes that only speak TLS, and open channels to them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import grpc

from tests.security.certs import Leaf
from tests.support.processes import ServiceProcess, start_service, wait_ready


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
        wait_ready(proc, timeout, channel=lambda address: tls_channel(address, ca, leaf))
        yield proc
    finally:
        proc.stop()
