"""What the store does when it gains or loses a prefix's lease: forget, reload, hand over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Protocol

from services.cache.clock import Clock
from services.cache.storage.readers import Readers
from services.cache.store.gate import PrefixGates
from services.cache.store.lru import LruMemory, entry_size
from services.cache.store.overlay import Overlay, settled
from services.common.errors import ServiceError

log = logging.getLogger(__name__)


class Leases(Protocol):
    """What a tenure asks of ownership: the epoch it holds and giving a prefix up."""

    def current_epoch(self, prefix: str) -> int | None:
        """The epoch of our lease on `prefix`, None when we hold none."""
        ...

    async def release(self, prefix: str) -> bool:
        """Give up our lease on `prefix` now; False if that failed."""
        ...


class Tenure:
    """The store's side of ownership (the `Owned` an Ownership is started with)."""

    def __init__(
        self,
        *,
        leases: Leases,
        gates: PrefixGates,
        overlay: Overlay,
        memory: LruMemory,
        readers: Readers,
        clock: Clock,
        writer: Executor,
        moved: Callable[[str, str], None] | None = None,
    ) -> None:
        self._leases = leases
        self._gates = gates
        self._overlay = overlay
        self._memory = memory
        self._readers = readers
        self._clock = clock
        self._writer = writer
        # Told (prefix, why) when the prefix's history here ends: its watchers reset.
        self._moved = moved or _ignore
        self._warming: set[asyncio.Task[None]] = set()

    @property
    def writer(self) -> Executor:
        return self._writer

    def acquired(self, prefix: str, epoch: int) -> None:
        # The previous owner may have written since we last held it: start from
        # the database, and load the prefix in the background.
        self._forget(prefix)
        self._moved(prefix, f"the lease was acquired at epoch {epoch}")
        task = asyncio.get_running_loop().create_task(self._warm(prefix, epoch))
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    def lost(self, prefix: str) -> None:
        # Pending writes of the prefix need nothing here: their fence refuses them.
        self._forget(prefix)
        self._moved(prefix, "the lease was lost")

    async def hand_over(self, prefix: str) -> None:
        # Holding the gate, nothing new starts on the prefix; those queued behind
        # us find it gone and are sent to the new owner.
        async with self._gates.hold(prefix, internal=True):
            await settled(self._overlay.pending(prefix))
            if await self._leases.release(prefix):
                self._forget(prefix)
                self._moved(prefix, "the lease was handed over")

    async def stop(self) -> None:
        """Cancel loads still running."""
        for task in list(self._warming):
            task.cancel()
        await asyncio.gather(*self._warming, return_exceptions=True)

    def _forget(self, prefix: str) -> None:
        self._memory.remove_prefix(prefix)
        self._memory.doubt(prefix)

    async def _warm(self, prefix: str, epoch: int) -> None:
        """Load the prefix's newest entries into free memory; all of them makes it whole."""
        memory, overlay = self._memory, self._overlay
        try:
            async with self._gates.hold(prefix, internal=True):
                if self._leases.current_epoch(prefix) != epoch:
                    return
                # What this tenure already wrote must be in the database before we read it.
                await settled(overlay.pending(prefix))
                budget = memory.max_bytes - memory.bytes
                rows, whole = await self._readers.load_recent(
                    self._clock.now(), budget, lambda row: entry_size(row.key, row.blob), prefix
                )
                if self._leases.current_epoch(prefix) != epoch:
                    return
                evictions = memory.evictions
                for row in reversed(rows):
                    if not overlay.touches(row.key, prefix) and row.key not in memory:
                        memory.put(row.key, prefix, row.blob, row.expires_at)
                if whole:
                    memory.vouch(prefix, since=evictions)
        except ServiceError as exc:
            log.info("prefix %r not preloaded: %s", prefix, exc.message)


def _ignore(prefix: str, why: str) -> None:
    return None
