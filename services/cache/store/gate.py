"""The input gate: operations on one prefix run one at a time, in arrival order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType

from services.cache.errors import CacheError, Failure


class _Gate:
    __slots__ = ("depth", "lock", "requests")

    def __init__(self) -> None:
        # asyncio.Lock hands itself to waiters in FIFO order and a newcomer
        # cannot barge past queued waiters, which is the arrival order we promise.
        self.lock = asyncio.Lock()
        # Holder plus waiters.
        self.depth = 0
        # Of those, the callers' operations: CACHE_MAX_PREFIX_QUEUE bounds these.
        self.requests = 0


class PrefixGates:
    """One FIFO gate per prefix, created on demand and dropped when idle."""

    def __init__(self, max_queue: int = 1024) -> None:
        self.max_queue = max_queue
        self._gates: dict[str, _Gate] = {}

    def __len__(self) -> int:
        return len(self._gates)

    def depth(self, prefix: str) -> int:
        """Operations holding or waiting for the gate of `prefix`."""
        gate = self._gates.get(prefix)
        return 0 if gate is None else gate.depth

    def hold(self, prefix: str, *, internal: bool = False) -> Hold:
        """`async with`: our turn on `prefix`; RESOURCE_EXHAUSTED when its queue is full.

        `internal` is the node's own upkeep (loading a prefix it acquired, handing
        one over). It queues in order like any operation but takes no caller's
        place: a preload stuck behind a slow database must not turn callers away.
        """
        return Hold(self, prefix, internal)

    def hold_all(self, prefixes: Iterable[str]) -> Hold | HoldAll:
        """Hold several gates at once (an MSet spanning prefixes).

        Taken in sorted order: two multi-prefix operations can then never each
        hold a gate the other waits for.
        """
        ordered = sorted(set(prefixes))
        if len(ordered) == 1:
            return Hold(self, ordered[0])
        return HoldAll([Hold(self, prefix) for prefix in ordered])

    def _join(self, prefix: str, internal: bool) -> _Gate:
        gate = self._gates.get(prefix)
        if gate is None:
            gate = self._gates[prefix] = _Gate()
        if not internal:
            if gate.requests >= self.max_queue:
                raise CacheError(
                    Failure.BUSY,
                    f"prefix {prefix!r} has {gate.requests} operations queued "
                    f"(CACHE_MAX_PREFIX_QUEUE={self.max_queue}); retry with backoff",
                )
            gate.requests += 1
        gate.depth += 1
        return gate

    def _leave(self, prefix: str, gate: _Gate, internal: bool) -> None:
        gate.depth -= 1
        if not internal:
            gate.requests -= 1
        if gate.depth == 0 and self._gates.get(prefix) is gate:
            del self._gates[prefix]


class Hold:
    """`async with` one prefix's gate.

    A class rather than an @asynccontextmanager: no generator per call, and an
    idle gate's lock is taken without suspending.
    """

    __slots__ = ("_gate", "_gates", "_internal", "_prefix")

    def __init__(self, gates: PrefixGates, prefix: str, internal: bool = False) -> None:
        self._gates = gates
        self._prefix = prefix
        self._internal = internal
        self._gate: _Gate | None = None

    async def __aenter__(self) -> None:
        gate = self._gates._join(self._prefix, self._internal)
        try:
            # Returns without suspending when the lock is free and nobody waits.
            await gate.lock.acquire()
        except BaseException:  # cancelled while queued
            self._gates._leave(self._prefix, gate, self._internal)
            raise
        self._gate = gate

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        gate = self._gate
        assert gate is not None
        self._gate = None
        gate.lock.release()
        self._gates._leave(self._prefix, gate, self._internal)


class HoldAll:
    """`async with` several gates, entered in the given order, left in reverse."""

    __slots__ = ("_entered", "_holds")

    def __init__(self, holds: list[Hold]) -> None:
        self._holds = holds
        self._entered: list[Hold] = []

    async def __aenter__(self) -> None:
        try:
            for hold in self._holds:
                await hold.__aenter__()
                self._entered.append(hold)
        except BaseException:
            await self._leave()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._leave()

    async def _leave(self) -> None:
        while self._entered:
            await self._entered.pop().__aexit__(None, None, None)
