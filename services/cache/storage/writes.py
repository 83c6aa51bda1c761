"""The write operations the group committer carries to the database, in arrival order,
their typed outcomes, and `dispatch`: the one place that tells the kinds of write apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar


class _Fenced:
    """A write made under a prefix's lease: it commits only while that lease holds."""

    __slots__ = ()
    prefix: str
    epoch: int

    @property
    def fence(self) -> tuple[str, int]:
        """The (prefix, epoch) lease this write needs at commit."""
        return (self.prefix, self.epoch)


@dataclass(slots=True)
class Put(_Fenced):
    """Insert or replace one entry."""

    key: str
    prefix: str
    blob: bytes
    expires_at: float
    # Arrival order: tells a settled write from a newer one of the same key.
    seq: int
    # Fencing token of the prefix's lease when the write was admitted.
    epoch: int = 1
    # The prefix's sequence of the commit group that settled it (0 until then):
    # written by watch.invalidations.Invalidations.committed as the group settles,
    # before the writer is answered; the store reads it only after that.
    commit_seq: int = 0


@dataclass(slots=True)
class Remove(_Fenced):
    """Delete one entry; the outcome says whether a live one existed."""

    key: str
    prefix: str
    seq: int
    epoch: int = 1
    commit_seq: int = 0


@dataclass(slots=True)
class ClearPrefix(_Fenced):
    """Delete every entry of a prefix; the outcome is how many live ones there were."""

    prefix: str
    seq: int
    epoch: int = 1
    commit_seq: int = 0


@dataclass(slots=True)
class Sweep:
    """Delete up to `limit` expired rows; the outcome is how many."""

    limit: int

    @property
    def fence(self) -> None:
        """A Sweep needs no lease: any node may delete expired rows."""
        return None


WriteOp = Put | Remove | ClearPrefix | Sweep
# The writes fenced by a prefix's lease (all but a Sweep, which any node may run).
PrefixWrite = Put | Remove | ClearPrefix


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one committed write did: the rows it deleted.

    Live entries for a Remove (0 or 1) and a ClearPrefix, expired rows for a
    Sweep, always 0 for a Put.
    """

    removed: int = 0


# Every committed Put has this outcome: one shared object, not one per write.
STORED = Outcome()

T_co = TypeVar("T_co", covariant=True)


class WriteHandler(Protocol[T_co]):
    """Something to do per kind of write (what `dispatch` calls)."""

    def put(self, op: Put) -> T_co:
        """Handle a Put."""
        ...

    def remove(self, op: Remove) -> T_co:
        """Handle a Remove."""
        ...

    def clear(self, op: ClearPrefix) -> T_co:
        """Handle a ClearPrefix."""
        ...

    def sweep(self, op: Sweep) -> T_co:
        """Handle a Sweep."""
        ...


def dispatch(op: WriteOp, handler: WriteHandler[T_co]) -> T_co:
    """Call `handler`'s method for the kind of `op`: the one branch on the kind of write."""
    # Put first: it is nearly every write.
    if type(op) is Put:
        return handler.put(op)
    if type(op) is Remove:
        return handler.remove(op)
    if type(op) is ClearPrefix:
        return handler.clear(op)
    assert type(op) is Sweep, op
    return handler.sweep(op)
