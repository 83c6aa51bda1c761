"""Admin authorization: `authorization: Bearer <ADMIN_TOKEN>`, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

import grpc

from services.common.errors import ServiceError

Metadata = Sequence[tuple[str, str | bytes]]


class AdminAuth:
    """Checks the bearer token of admin operations."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def configured(self) -> bool:
        return self._token is not None

    def check(self, metadata: Metadata | None, operation: str) -> None:
        """Raise ServiceError (UNAUTHENTICATED / PERMISSION_DENIED) unless authorized."""
        if self._token is None:
            raise ServiceError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{operation} is an admin operation and admin operations are disabled: "
                "set ADMIN_TOKEN on the server to enable them",
            )
        presented = _bearer(metadata)
        if presented is None:
            raise ServiceError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"{operation} is an admin operation: send 'authorization: Bearer <ADMIN_TOKEN>'",
            )
        if not hmac.compare_digest(presented, self._token):
            raise ServiceError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{operation}: the bearer token is not the admin token",
            )


def _bearer(metadata: Metadata | None) -> bytes | None:
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip().encode("latin-1", errors="replace")
    return None
