"""The client's errors: what the cache refused, and what it could not answer."""

from __future__ import annotations

import grpc

# Codes that mean "the cache could not answer" rather than "the cache refused the request".
_TRANSPORT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
    }
)
_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


class CacheError(Exception):
    """The cache rejected a request (bad key, TTL, size, auth); `code` is the gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class CacheUnavailable(CacheError):  # noqa: N818 (the name other services import)
    """The cache could not be reached or did not answer in time."""


def failure(code: grpc.StatusCode, message: str) -> CacheError:
    """The exception of a failed call or batch item with `code`."""
    if code in _TRANSPORT_CODES:
        return CacheUnavailable(code, message)
    return CacheError(code, message)


def error_from(exc: grpc.aio.AioRpcError) -> CacheError:
    """The exception of a failed call."""
    code = exc.code()
    return failure(code, exc.details() or code.name)


def status_code(value: int) -> grpc.StatusCode:
    """The StatusCode of a numeric code (a batch item's), UNKNOWN if none."""
    return _BY_VALUE.get(value, grpc.StatusCode.UNKNOWN)
