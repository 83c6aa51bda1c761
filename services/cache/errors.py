"""The cache's domain errors: why a call was refused, and the one mapping to gRPC codes.

The store, its gates, its committer and ownership raise `CacheError` with a
`Failure`; none of them names a gRPC status code. `_CODES` below is the one
place a failure gets its code, because `ServiceError` (what the servicer's
boundary answers with) carries one.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import grpc
from google.protobuf import message

from services.common.errors import ServiceError


class Failure(Enum):
    """What a caller should do about a refused call."""

    # Over a configured bound (a value's size): send less; retrying the same fails.
    TOO_LARGE = "too large"
    # A queue is full: back off, then retry.
    BUSY = "busy"
    # The database's disk is full or its quota reached: nothing was written; retry
    # once space is freed.
    DISK_FULL = "disk full"
    # Nothing was done, and nothing is known wrong with the call: retry, here
    # later or on the node named.
    UNAVAILABLE = "unavailable"


# UNAVAILABLE says "nothing was done: retry". A request over a bound must not be
# resent as is, and a full queue wants backoff, so both get RESOURCE_EXHAUSTED
# (gRPC's code for an exhausted quota or queue).
_CODES = {
    Failure.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Failure.BUSY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Failure.DISK_FULL: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Failure.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


class CacheError(ServiceError):
    """A call the cache refused or could not do, and why (`failure`)."""

    def __init__(
        self, failure: Failure, message: str, details: Sequence[message.Message] = ()
    ) -> None:
        super().__init__(_CODES[failure], message, details)
        self.failure = failure
