"""TLS and optional mTLS for every gRPC link, from TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from services.common.config import ConfigError, Env


@dataclass(frozen=True)
class TlsConfig:
    """PEM bytes of this process's certificate and key, and the CA it trusts."""

    cert: bytes | None
    key: bytes | None
    ca: bytes | None
    # Servers require a client certificate signed by the CA (mTLS).
    client_auth: bool

    @property
    def server_enabled(self) -> bool:
        return self.cert is not None and self.key is not None

    @property
    def client_enabled(self) -> bool:
        return self.ca is not None

    def server_credentials(self) -> grpc.ServerCredentials:
        assert self.cert is not None and self.key is not None
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.ca if self.client_auth else None,
            require_client_auth=self.client_auth,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )

    @classmethod
    def from_env(cls, env: Env) -> TlsConfig:
        cert = _read(env, "TLS_CERT_FILE")
        key = _read(env, "TLS_KEY_FILE")
        ca = _read(env, "TLS_CA_FILE")
        if (cert is None) != (key is None):
            raise ConfigError("TLS_CERT_FILE: TLS_CERT_FILE and TLS_KEY_FILE must be set together")
        client_auth = env.flag("TLS_CLIENT_AUTH", False)
        if client_auth and (ca is None or cert is None):
            raise ConfigError(
                "TLS_CLIENT_AUTH: mTLS needs TLS_CA_FILE, TLS_CERT_FILE and TLS_KEY_FILE"
            )
        return cls(cert=cert, key=key, ca=ca, client_auth=client_auth)


def _read(env: Env, name: str) -> bytes | None:
    path = env.optional(name)
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path!r}: {exc.strerror}") from None
