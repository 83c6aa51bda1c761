"""The input gate: operations on one prefix run one at a time, in arrival order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager

import grpc

from services.common.errors import ServiceError


class _Gate:
    __slots__ = ("depth", "lock")

    def __init__(self) -> None:
        # asyncio.Lock hands itself to waiters in FIFO order and a newcomer
        # cannot barge past queued waiters, which is the arrival order we promise.
        self.lock = asyncio.Lock()
        # Holder plus waiters.
        self.depth = 0


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

    @asynccontextmanager
    async def hold(self, prefix: str) -> AsyncIterator[None]:
        """Wait for our turn on `prefix`; RESOURCE_EXHAUSTED when its queue is full."""
        gate = self._gates.get(prefix)
        if gate is None:
            gate = self._gates[prefix] = _Gate()
        if gate.depth >= self.max_queue:
            raise ServiceError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"prefix {prefix!r} has {gate.depth} operations queued (CACHE_MAX_PREFIX_QUEUE="
                f"{self.max_queue}); retry with backoff",
            )
        gate.depth += 1
        try:
            async with gate.lock:
                yield
        finally:
            gate.depth -= 1
            if gate.depth == 0 and self._gates.get(prefix) is gate:
                del self._gates[prefix]

    @asynccontextmanager
    async def hold_all(self, prefixes: Iterable[str]) -> AsyncIterator[None]:
        """Hold several gates at once (an MSet spanning prefixes).

        Taken in sorted order: two multi-prefix operations can then never each
        hold a gate the other waits for.
        """
        async with AsyncExitStack() as stack:
            for prefix in sorted(set(prefixes)):
                await stack.enter_async_context(self.hold(prefix))
            yield
