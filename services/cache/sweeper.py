"""The background sweeper: deletes expired rows and refreshes the per-prefix key gauge."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.cache.store.interface import Store
from services.common.errors import ServiceError

log = logging.getLogger(__name__)


class Sweeper:
    """Every `interval` seconds: sweep expired rows (cache_expired_total), count keys."""

    def __init__(self, store: Store, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sweeping in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cache-sweeper")

    async def stop(self) -> None:
        """Stop after the current sweep, if any."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def run_once(self) -> int:
        """One sweep and key count; returns the rows removed."""
        removed = await self._store.sweep()
        await self._store.refresh_key_counts()
        if removed:
            log.info("swept %d expired entries", removed)
        return removed

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            if self._stop.is_set():
                return
            try:
                await self.run_once()
            except ServiceError as exc:
                log.warning("sweep failed: %s", exc.message)
            except Exception:
                log.exception("sweep failed")
