"""The write operations the group committer carries to the database, in arrival order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Put:
    """Insert or replace one entry."""

    key: str
    prefix: str
    blob: bytes
    expires_at: float
    # Arrival order: tells a settled write from a newer one of the same key.
    seq: int
    # Fencing token of the prefix's lease when the write was admitted.
    epoch: int = 1


@dataclass(slots=True)
class Remove:
    """Delete one entry; the result says whether a live one existed."""

    key: str
    prefix: str
    seq: int
    epoch: int = 1


@dataclass(slots=True)
class ClearPrefix:
    """Delete every entry of a prefix; the result is how many live ones there were."""

    prefix: str
    seq: int
    epoch: int = 1


@dataclass(slots=True)
class Sweep:
    """Delete up to `limit` expired rows; the result is how many."""

    limit: int


WriteOp = Put | Remove | ClearPrefix | Sweep
