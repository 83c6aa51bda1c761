"""Validation of writes before anything is admitted: key, TTL, value size, batch size."""

from __future__ import annotations

from dataclasses import dataclass

from services.cache.errors import CacheError, Failure
from services.cache.store.keys import KeyRules
from services.cache.store.ttl_policy import TtlPolicy
from services.common.errors import invalid_argument


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """The bounds the store enforces."""

    max_memory_bytes: int = 256 * 1024 * 1024
    max_value_bytes: int = 1024 * 1024
    max_batch: int = 1000
    max_prefix_queue: int = 1024
    commit_max_batch: int = 2048
    read_threads: int = 4


@dataclass(frozen=True, slots=True)
class NewEntry:
    """One validated write."""

    key: str
    prefix: str
    blob: bytes
    ttl: int


class Admission:
    """Checks requests against the key rules, the TTL policy and the limits."""

    def __init__(self, keys: KeyRules, ttl: TtlPolicy, limits: StoreLimits) -> None:
        self.keys = keys
        self.ttl = ttl
        self.limits = limits

    def entry(self, key: str, blob: bytes, ttl_seconds: int, field: str = "") -> NewEntry:
        """A valid write; `field` prefixes error fields inside a batch ("items[3].")."""
        prefix = self.keys.prefix_of(key, f"{field}key")
        ttl = self.ttl.resolve(ttl_seconds, f"{field}ttl_seconds")
        if len(blob) > self.limits.max_value_bytes:
            raise CacheError(
                Failure.TOO_LARGE,
                f"{field}value of key {key!r} is {len(blob)} bytes serialized; the limit is "
                f"{self.limits.max_value_bytes} bytes (CACHE_MAX_VALUE_BYTES)",
            )
        return NewEntry(key, prefix, blob, ttl)

    def batch(self, size: int, field: str) -> None:
        """INVALID_ARGUMENT naming the limit when a batch is too big."""
        if size > self.limits.max_batch:
            raise invalid_argument(
                f"{field} has {size} entries; the limit is {self.limits.max_batch} per call "
                "(CACHE_MAX_BATCH): split the batch",
                field,
            )
