"""What the store does when it gains or loses a prefix's lease: forget, reload, hand over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from services.cache.lru import entry_size
from services.cache.overlay import Commit
from services.common.errors import ServiceError

if TYPE_CHECKING:
    from services.cache.store import CacheStore

log = logging.getLogger(__name__)


async def settled(commits: Iterable[Commit]) -> bool:
    """Wait for every commit in `commits`; False when any of them failed."""
    ok = True
    for commit in commits:
        try:
            await asyncio.shield(commit)
        except ServiceError:
            ok = False
    return ok


class Tenure:
    """The store's side of ownership (the `Owned` an Ownership is started with)."""

    def __init__(self, store: CacheStore) -> None:
        self._store = store
        self._warming: set[asyncio.Task[None]] = set()

    @property
    def writer(self) -> Executor:
        return self._store.committer.executor

    def acquired(self, prefix: str, epoch: int) -> None:
        # The previous owner may have written since we last held it: start from
        # the database, and load the prefix in the background.
        self._forget(prefix)
        task = asyncio.get_running_loop().create_task(self._warm(prefix, epoch))
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    def lost(self, prefix: str) -> None:
        # Pending writes of the prefix need nothing here: their fence refuses them.
        self._forget(prefix)

    async def hand_over(self, prefix: str) -> None:
        store = self._store
        # Holding the gate, nothing new starts on the prefix; those queued behind
        # us find it gone and are sent to the new owner.
        async with store.gates.hold(prefix, internal=True):
            await settled(store.overlay.pending(prefix))
            if await store.ownership.release(prefix):
                self._forget(prefix)

    async def stop(self) -> None:
        """Cancel loads still running."""
        for task in list(self._warming):
            task.cancel()
        await asyncio.gather(*self._warming, return_exceptions=True)

    def _forget(self, prefix: str) -> None:
        self._store.memory.remove_prefix(prefix)
        self._store.complete_prefixes.discard(prefix)

    async def _warm(self, prefix: str, epoch: int) -> None:
        """Load the prefix's newest entries into free memory; all of them makes it complete."""
        store = self._store
        try:
            async with store.gates.hold(prefix, internal=True):
                if store.ownership.current_epoch(prefix) != epoch:
                    return
                # What this tenure already wrote must be in the database before we read it.
                await settled(store.overlay.pending(prefix))
                budget = store.memory.max_bytes - store.memory.bytes
                rows, whole = await store.readers.load_recent(
                    store.clock.now(), budget, lambda row: entry_size(row.key, row.blob), prefix
                )
                if store.ownership.current_epoch(prefix) != epoch:
                    return
                evictions = store.memory.evictions
                for row in reversed(rows):
                    if not store.overlay.touches(row.key, prefix) and row.key not in store.memory:
                        store.memory.put(row.key, prefix, row.blob, row.expires_at)
                if whole and store.memory.evictions == evictions:
                    store.complete_prefixes.add(prefix)
        except ServiceError as exc:
            log.info("prefix %r not preloaded: %s", prefix, exc.message)
