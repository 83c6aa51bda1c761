"""HTTP headers to gRPC call options: forwarded metadata and the Grpc-Timeout deadline."""

from __future__ import annotations

import re
from collections.abc import Iterable

import grpc

from services.gateway.errors import HttpError

METADATA_PREFIX = "grpc-metadata-"
# gRPC's own timeout header format: up to 8 digits and a unit (Hours, Minutes,
# Seconds, milliseconds, microseconds, nanoseconds), e.g. "5S", "100m".
_TIMEOUT = re.compile(r"^([0-9]{1,8})([HMSmun])$")
_UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# gRPC metadata keys are lower-case token characters; values are printable ASCII.
_KEY = re.compile(r"^[0-9a-z_.\-]+$")
_VALUE = re.compile(r"^[\x20-\x7e]*$")
# Keys the transport owns: forwarding them would confuse or break the call.
_RESERVED = {"content-type", "te", "host", "user-agent", "connection", "authority"}


def parse_timeout(value: str | None, default: float, maximum: float) -> float:
    """The call deadline in seconds from a Grpc-Timeout header, or the default."""
    if value is None:
        return default
    found = _TIMEOUT.match(value.strip())
    if found is None:
        raise _bad_header(
            "Grpc-Timeout",
            f"Grpc-Timeout must be 1-8 digits and a unit H, M, S, m, u or n "
            f"(e.g. 5S, 100m), got {value!r}",
        )
    seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if seconds <= 0:
        # A zero deadline has passed before the call starts: the request can never succeed.
        raise _bad_header("Grpc-Timeout", f"Grpc-Timeout must be more than zero, got {value!r}")
    return min(seconds, maximum)


def forwarded_metadata(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """`authorization` and every `Grpc-Metadata-<key>` header as gRPC metadata."""
    metadata: list[tuple[str, str]] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "authorization":
            key = "authorization"
        elif lowered.startswith(METADATA_PREFIX):
            key = lowered[len(METADATA_PREFIX) :]
            if not _KEY.match(key) or key.startswith(("grpc-", ":")) or key in _RESERVED:
                raise _bad_header(name, f"header {name!r} names a reserved or invalid gRPC key")
            if key.endswith("-bin"):
                raise _bad_header(name, f"header {name!r}: binary metadata is not forwarded")
        else:
            continue
        if not _VALUE.match(value):
            raise _bad_header(
                name, f"header {name!r} has characters gRPC metadata cannot carry (printable ASCII)"
            )
        metadata.append((key, value))
    return metadata


def _bad_header(name: str, message: str) -> HttpError:
    return HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, message)
