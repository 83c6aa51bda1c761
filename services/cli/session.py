"""One CacheClient for one command run, and the cache's errors as the CLI's exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click
import grpc

from services.client import CacheClient, CacheError, CacheUnavailable
from services.common.tls import TlsConfig

T = TypeVar("T")

# Exit codes: 1 a miss (get, ttl); 2 bad input (ours or the cache's refusal); 3 no cache.
MISS = 1
BAD_INPUT = 2
UNREACHABLE = 3


class Unreachable(click.ClickException):
    """The cache could not be reached or did not answer in time."""

    exit_code = UNREACHABLE


class Refused(click.ClickException):
    """The cache refused the request (a bad key, TTL or token)."""

    exit_code = BAD_INPUT


@dataclass(frozen=True)
class Target:
    """Where and how to call the cache (the global options)."""

    address: str
    token: str | None
    timeout: float
    tls: TlsConfig | None

    def run(self, work: Callable[[CacheClient], Awaitable[T]]) -> T:
        """Run `work` with a client, closing it after; cache errors become exit codes."""

        async def session() -> T:
            client = CacheClient(self.address, timeout=self.timeout, tls=self.tls)
            try:
                return await work(client)
            finally:
                await client.close()

        try:
            return asyncio.run(session())
        except CacheUnavailable as exc:
            raise Unreachable(f"cache at {self.address} unreachable: {exc.message}") from None
        except CacheError as exc:
            raise Refused(f"{_CODE_WORDS.get(exc.code, exc.code.name)}: {exc.message}") from None


_CODE_WORDS = {
    grpc.StatusCode.INVALID_ARGUMENT: "invalid argument",
    grpc.StatusCode.UNAUTHENTICATED: "unauthenticated (pass --token or set ADMIN_TOKEN)",
    grpc.StatusCode.PERMISSION_DENIED: "permission denied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "too large",
}


def tls_config(cert: Path | None, key: Path | None, ca: Path | None) -> TlsConfig | None:
    """The client's TLS from the --tls-* options (None: plaintext), as the services read it."""
    if cert is None and key is None and ca is None:
        return None
    if (cert is None) != (key is None):
        raise click.UsageError(
            "--tls-cert-file and --tls-key-file go together (TLS_CERT_FILE/TLS_KEY_FILE)"
        )
    if ca is None:
        raise click.UsageError(
            "TLS needs --tls-ca-file (TLS_CA_FILE): the CA the cache's certificate is signed by"
        )
    return TlsConfig(
        cert=cert.read_bytes() if cert else None,
        key=key.read_bytes() if key else None,
        ca=ca.read_bytes(),
        client_auth=False,
    )
