"""Admitted writes not yet committed: the newest state, consulted before memory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.cache.storage.writes import (
    ClearPrefix,
    Outcome,
    Put,
    Remove,
    Sweep,
    WriteOp,
    dispatch,
)
from services.common.errors import ServiceError

# A submission's commit: resolves to one outcome per op, or fails.
Commit = asyncio.Future[list[Outcome]]


@dataclass(frozen=True, slots=True)
class Seen:
    """What a read found for one key."""

    # The serialized Value, or None when there is no live entry.
    blob: bytes | None
    expires_at: float = 0.0
    # The commit to wait for before this may be revealed (the output gate).
    wait: Commit | None = None
    # Memory cannot tell: ask the database.
    unknown: bool = False


async def settled(commits: Iterable[Commit]) -> bool:
    """Wait for every commit in `commits`; False when any of them failed."""
    ok = True
    for commit in commits:
        try:
            await asyncio.shield(commit)
        except ServiceError:
            ok = False
    return ok


@dataclass(frozen=True, slots=True)
class Pending:
    """One key's uncommitted state: its value, or None for a tombstone, and its commit."""

    blob: bytes | None
    expires_at: float
    done: Commit


@dataclass(frozen=True, slots=True)
class PrefixPending:
    """What is uncommitted in one prefix: a Clear (its commit) and the writes newer than it."""

    clear: Commit | None
    writes: dict[str, Pending]


MISS = Seen(None)
NOT_IN_MEMORY = Seen(None, unknown=True)


@dataclass(slots=True)
class _Pending:
    prefix: str
    seq: int
    blob: bytes | None  # None: a tombstone
    expires_at: float
    done: Commit


class Overlay:
    """The latest uncommitted write per key and the latest uncommitted Clear per prefix.

    Entries leave only when the commit that carries them settles, so nothing
    admitted is ever evicted before it is durable.
    """

    def __init__(self) -> None:
        self._writes: dict[str, _Pending] = {}
        self._clears: dict[str, _Pending] = {}
        # Bytes of pending values (they count as memory in use).
        self.bytes = 0
        self._settler = _Settle(self)

    def __len__(self) -> int:
        return len(self._writes) + len(self._clears)

    def admit(self, ops: Sequence[WriteOp], done: Commit) -> None:
        """Record `ops`, committed by `done`, as the newest state of their keys."""
        admit = _Admit(self, done)
        for op in ops:
            dispatch(op, admit)

    def _replace(self, key: str, pending: _Pending) -> None:
        old = self._writes.get(key)
        if old is not None and old.blob is not None:
            self.bytes -= len(old.blob)
        self._writes[key] = pending
        if pending.blob is not None:
            self.bytes += len(pending.blob)

    def peek(self, key: str, prefix: str) -> Seen | None:
        """The pending state of `key`, or None when nothing pending touches it."""
        write = self._writes.get(key)
        clear = self._clears.get(prefix)
        if write is not None and (clear is None or write.seq > clear.seq):
            return Seen(write.blob, write.expires_at, write.done)
        if clear is not None:
            return Seen(None, 0.0, clear.done)
        return None

    def touches(self, key: str, prefix: str) -> bool:
        """Whether a pending write or Clear covers `key`."""
        return key in self._writes or prefix in self._clears

    def pending(self, prefix: str) -> set[Commit]:
        """The commits still to settle for writes to `prefix`."""
        found = {p.done for p in self._writes.values() if p.prefix == prefix}
        clear = self._clears.get(prefix)
        if clear is not None:
            found.add(clear.done)
        return found

    def pending_of(self, prefix: str) -> PrefixPending:
        """Every uncommitted write and the uncommitted Clear of `prefix` (for a scan)."""
        clear = self._clears.get(prefix)
        writes = {
            key: Pending(p.blob, p.expires_at, p.done)
            for key, p in self._writes.items()
            if p.prefix == prefix and (clear is None or p.seq > clear.seq)
        }
        return PrefixPending(None if clear is None else clear.done, writes)

    def settle(self, op: WriteOp) -> None:
        """Forget `op` (committed or failed) unless a newer pending op replaced it."""
        dispatch(op, self._settler)

    def _settle_write(self, key: str, seq: int) -> None:
        write = self._writes.get(key)
        if write is not None and write.seq == seq:
            del self._writes[key]
            if write.blob is not None:
                self.bytes -= len(write.blob)

    def _settle_clear(self, prefix: str, seq: int) -> None:
        clear = self._clears.get(prefix)
        if clear is not None and clear.seq == seq:
            del self._clears[prefix]


class _Admit:
    """Records each kind of write in the overlay (a WriteHandler)."""

    __slots__ = ("_done", "_overlay")

    def __init__(self, overlay: Overlay, done: Commit) -> None:
        self._overlay = overlay
        self._done = done

    def put(self, op: Put) -> None:
        self._overlay._replace(
            op.key, _Pending(op.prefix, op.seq, op.blob, op.expires_at, self._done)
        )

    def remove(self, op: Remove) -> None:
        self._overlay._replace(op.key, _Pending(op.prefix, op.seq, None, 0.0, self._done))

    def clear(self, op: ClearPrefix) -> None:
        self._overlay._clears[op.prefix] = _Pending(op.prefix, op.seq, None, 0.0, self._done)

    def sweep(self, op: Sweep) -> None:
        return None  # expired rows are nobody's newest state


class _Settle:
    """Forgets each kind of write once its commit settled (a WriteHandler)."""

    __slots__ = ("_overlay",)

    def __init__(self, overlay: Overlay) -> None:
        self._overlay = overlay

    def put(self, op: Put) -> None:
        self._overlay._settle_write(op.key, op.seq)

    def remove(self, op: Remove) -> None:
        self._overlay._settle_write(op.key, op.seq)

    def clear(self, op: ClearPrefix) -> None:
        self._overlay._settle_clear(op.prefix, op.seq)

    def sweep(self, op: Sweep) -> None:
        return None
