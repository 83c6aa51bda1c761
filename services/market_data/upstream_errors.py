"""Upstream failures as gRPC status codes, classified for retries, breakers and stale serving."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from services.common.errors import ServiceError


class UpstreamError(ServiceError):
    """A provider call failed; `outcome` is its metrics label.

    `transient` errors (timeouts, 5xx, connection errors) are retried;
    `trips_breaker` errors count against the provider's circuit breaker;
    `stale_ok` errors let a stale cached copy be served instead.
    """

    outcome = "error"
    transient = False
    trips_breaker = True
    stale_ok = True

    def __init__(self, code: grpc.StatusCode, message: str, retry_after: float | None = None):
        details = []
        if retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromMilliseconds(max(int(retry_after * 1000), 1))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        super().__init__(code, message, details)
        self.retry_after = retry_after


class UpstreamUnavailableError(UpstreamError):
    """The provider is down, slow, or answered 5xx: worth retrying."""

    outcome = "unavailable"
    transient = True

    def __init__(self, message: str, *, outcome: str = "unavailable", transient: bool = True):
        super().__init__(grpc.StatusCode.UNAVAILABLE, message)
        self.outcome = outcome
        self.transient = transient


class UpstreamBadResponseError(UpstreamUnavailableError):
    """The provider answered something we cannot read (not JSON, unknown shape)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, outcome="bad_response", transient=False)


class UpstreamRateLimitedError(UpstreamError):
    """The provider, or our own limiter for it, refuses more calls for now."""

    outcome = "rate_limited"
    # Hammering a rate-limited API again does not help; the breaker is for outages.
    trips_breaker = False

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(grpc.StatusCode.RESOURCE_EXHAUSTED, message, retry_after)


class UpstreamAuthError(UpstreamError):
    """The provider rejected the server's API key.

    FAILED_PRECONDITION, not INVALID_ARGUMENT: the caller's request is fine and
    retrying it unchanged will not help until an operator fixes the key.
    """

    outcome = "bad_key"
    trips_breaker = False

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.FAILED_PRECONDITION, message)


class UpstreamRejectedError(UpstreamError):
    """The provider refused the request's parameters (e.g. a date too far back)."""

    outcome = "rejected"
    trips_breaker = False
    stale_ok = False

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, message)


class SymbolNotFoundError(UpstreamError):
    """The provider does not know the symbol; cached negatively."""

    outcome = "not_found"
    trips_breaker = False
    stale_ok = False

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.NOT_FOUND, message)


class BreakerOpenError(UpstreamError):
    """The provider's circuit breaker is open: we fail fast instead of calling it."""

    outcome = "breaker_open"
    trips_breaker = False

    def __init__(self, provider: str, retry_after: float) -> None:
        super().__init__(
            grpc.StatusCode.UNAVAILABLE,
            f"{provider} is failing; calls to it are paused for {retry_after:.1f}s "
            "(circuit breaker open)",
            retry_after,
        )


class DeadlineExceededError(UpstreamError):
    """Too little of the caller's deadline is left to call the provider."""

    outcome = "deadline"
    trips_breaker = False

    def __init__(self, provider: str) -> None:
        super().__init__(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"the request's deadline ran out before {provider} could be asked",
        )
