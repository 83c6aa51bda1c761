"""The dashboard's feed: one Watch on the cache and a tick a second, as events.

- `snapshot` and `sector`: the cache's Watch on the `sectors` and `snapshots`
  prefixes says which keys changed; the changed entries are read from the cache
  itself (a server read, so never older than the change announced) and sent. A
  burst of changes is read once. When the snapshot is gone (a sector batch drops
  it), the sector service is asked to build the next one, as a page would.
- `metrics`: the cache's GetMetrics (hit rate, keys and memory per prefix), every tick.
- `backends`: each backend's grpc.health.v1 status, when it changes.
- `unavailable`: a part could not be read; the page says so and keeps the rest.

The Watch itself (each prefix at its owner, started again when it ends) is
prefix_watch.py; every start reads the state anew, so a change made while no
stream was open is not missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import json_format, message

from marketcache.v1 import cache_pb2, cache_pb2_grpc, sector_pb2, sector_pb2_grpc
from services.gateway.events import Event, Publish
from services.gateway.prefix_watch import BACKOFF, PrefixWatch
from services.gateway.transcode import message_json

log = logging.getLogger(__name__)

WATCHED = ("sectors", "snapshots")
SNAPSHOT_KEY = "snapshots:latest"
TICK_SECONDS = 1.0
# The most `sectors:` keys a resync reads (there are twelve: eleven sectors and SPY).
MAX_SECTOR_KEYS = 1000

BackendStates = Callable[[], Awaitable[Mapping[str, Mapping[str, str]]]]
Channel = Callable[[str], grpc.aio.Channel]


class DashboardFeed:
    """Produces the dashboard's events from the cache and the sector service."""

    def __init__(
        self,
        cache_address: str,
        sector_address: str,
        channel: Channel,
        backends: BackendStates,
        *,
        timeout: float,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self._cache_address = cache_address
        self._sector_address = sector_address
        # The gateway's channel to an address (opened on first use, closed with the gateway).
        self._channel = channel
        self._backend_states = backends
        self._timeout = timeout
        self._tick = tick_seconds
        self._publish: Publish = lambda _event: None
        self._wake = asyncio.Event()
        self._dirty: set[str] = set()
        self._snapshot_dirty = False
        self._all_sectors_dirty = False
        self._last_snapshot: Any = None
        self._retry_handle: asyncio.TimerHandle | None = None
        # What the pages have drawn per symbol: the snapshot's, then each sector sent since.
        self._shown: dict[str, Mapping[str, Any]] = {}

    async def run(self, publish: Publish) -> None:
        """Publish events until cancelled."""
        self._publish = publish
        self._dirty.clear()
        self._snapshot_dirty = self._all_sectors_dirty = False
        self._last_snapshot = None
        self._shown = {}
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._metrics_loop(), name="dashboard-metrics")
                tasks.create_task(self._backends_loop(), name="dashboard-backends")
                tasks.create_task(self._refresh_loop(), name="dashboard-refresh")
                watch = PrefixWatch(WATCHED, self._cache_address, self._cache, self)
                tasks.create_task(watch.run(), name="dashboard-watch")
        finally:
            if self._retry_handle is not None:
                self._retry_handle.cancel()
                self._retry_handle = None

    def _cache(self, address: str | None = None) -> Any:
        return cache_pb2_grpc.CacheServiceStub(self._channel(address or self._cache_address))

    def _unavailable(self, part: str, where: str, err: grpc.aio.AioRpcError) -> None:
        message = f"{where}: {err.code().name}: {err.details()}"
        self._publish(Event("unavailable", {"part": part, "message": message}))

    # -- the tick ---------------------------------------------------------------------

    async def _metrics_loop(self) -> None:
        while True:
            try:
                reply = await self._cache().GetMetrics(
                    cache_pb2.GetMetricsRequest(), timeout=self._timeout
                )
                self._publish(Event("metrics", message_json(reply)))
            except grpc.aio.AioRpcError as err:
                self._unavailable("metrics", f"the cache at {self._cache_address}", err)
            await asyncio.sleep(self._tick)

    async def _backends_loop(self) -> None:
        last: Any = None
        while True:
            states = {name: dict(info) for name, info in (await self._backend_states()).items()}
            if states != last:
                self._publish(Event("backends", {"backends": states}))
                last = states
            await asyncio.sleep(self._tick)

    # -- reading what changed ---------------------------------------------------------

    def started(self, prefix: str) -> None:
        """A Watch on `prefix` starts: read all of it anew."""
        if prefix == "snapshots":
            self._mark(snapshot=True)
        else:
            self._mark(sectors=True)

    def invalidated(self, prefix: str, keys: Sequence[str], whole_prefix: bool) -> None:
        """These keys changed: read them (once, however many changes come meanwhile)."""
        if prefix == "snapshots":
            self._mark(snapshot=True)
        elif whole_prefix:
            self._mark(sectors=True)
        else:
            self._mark(keys=keys)

    def _mark(
        self, *, keys: Sequence[str] = (), snapshot: bool = False, sectors: bool = False
    ) -> None:
        self._dirty.update(keys)
        self._snapshot_dirty |= snapshot
        self._all_sectors_dirty |= sectors
        self._wake.set()

    async def _refresh_loop(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            keys, self._dirty = self._dirty, set()
            snapshot, self._snapshot_dirty = self._snapshot_dirty, False
            every, self._all_sectors_dirty = self._all_sectors_dirty, False
            failed = False
            # Each part alone: a sector service that is down must not hold back the sectors.
            try:
                if snapshot:
                    await self._refresh_snapshot()
            except grpc.aio.AioRpcError as err:
                self._unavailable("snapshot", "reading the snapshot", err)
                self._retry(failures, snapshot=True)
                failed = True
            try:
                if every:
                    keys |= set(await self._scan_sectors())
                if keys:
                    await self._refresh_sectors(sorted(keys))
            except grpc.aio.AioRpcError as err:
                self._unavailable("sector", "reading the sectors", err)
                self._retry(failures, keys=sorted(keys), sectors=every)
                failed = True
            failures = failures + 1 if failed else 0

    def _retry(
        self,
        failures: int,
        *,
        keys: Sequence[str] = (),
        snapshot: bool = False,
        sectors: bool = False,
    ) -> None:
        # No change may come to announce it again (a snapshot build that timed out
        # stored nothing): read it again after a while, or with the next change.
        self._dirty.update(keys)
        self._snapshot_dirty |= snapshot
        self._all_sectors_dirty |= sectors
        if self._retry_handle is None:
            delay = BACKOFF[min(failures, len(BACKOFF) - 1)] * 2
            self._retry_handle = asyncio.get_running_loop().call_later(delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry_handle = None
        self._wake.set()

    async def _scan_sectors(self) -> list[str]:
        """Every key of the `sectors` prefix (a resync: what changed unwatched is not known)."""
        keys: list[str] = []
        cursor = ""
        while True:
            page = await self._cache().Scan(
                cache_pb2.ScanRequest(prefix="sectors", cursor=cursor, limit=100),
                timeout=self._timeout,
            )
            keys.extend(page.keys)
            cursor = page.next_cursor
            if not cursor or len(keys) >= MAX_SECTOR_KEYS:
                return keys

    async def _refresh_snapshot(self) -> None:
        reply = await self._cache().Get(
            cache_pb2.GetRequest(key=SNAPSHOT_KEY), timeout=self._timeout
        )
        data = _stored(reply, "snapshot", sector_pb2.GetSectorSnapshotResponse)
        if data is None:
            # Gone (or unreadable): have the sector service build one; its write is
            # announced by the Watch, and read again then.
            stub = sector_pb2_grpc.SectorServiceStub(self._channel(self._sector_address))
            built = await stub.GetSectorSnapshot(
                sector_pb2.GetSectorSnapshotRequest(), timeout=self._timeout
            )
            data = message_json(built)
        if data != self._last_snapshot:
            self._last_snapshot = data
            self._shown = _by_symbol(data)
            self._publish(Event("snapshot", data))

    async def _refresh_sectors(self, keys: list[str]) -> None:
        reply = await self._cache().MGet(cache_pb2.MGetRequest(keys=keys), timeout=self._timeout)
        for result in reply.results:
            data = _stored(result, "sector", sector_pb2.SectorData)
            if data is None:
                continue  # deleted or unreadable: the snapshot's tile stays
            symbol = result.key.partition(":")[2]
            if _same_sector(data, self._shown.get(symbol)):
                continue
            self._shown[symbol] = data
            self._publish(Event("sector", {"symbol": symbol, "sector": data}))


def _stored(
    reply: cache_pb2.GetResponse | cache_pb2.MGetResult, field: str, kind: type[message.Message]
) -> dict[str, Any] | None:
    """The sector service's entry (`{field: message as JSON, "storedAt": ...}`) as REST JSON."""
    if not reply.found:
        return None
    value = json_format.MessageToDict(reply.value)
    if not isinstance(value, dict) or not isinstance(value.get(field), dict):
        return None
    try:
        parsed = json_format.ParseDict(value[field], kind(), ignore_unknown_fields=True)
    except json_format.ParseError:
        log.debug("unreadable %s in %s", field, reply.key)
        return None
    return message_json(parsed)


def _by_symbol(snapshot: Any) -> dict[str, Mapping[str, Any]]:
    if not isinstance(snapshot, dict):
        return {}
    entries = [*snapshot.get("sectors", []), snapshot.get("benchmark") or {}]
    return {e["symbol"]: e for e in entries if isinstance(e, dict) and e.get("symbol")}


def _same_sector(data: Mapping[str, Any], entry: Mapping[str, Any] | None) -> bool:
    # The snapshot ranks its sectors; a stored sector has no rank of its own.
    if entry is None:
        return False
    return {k: v for k, v in data.items() if k != "rank"} == {
        k: v for k, v in entry.items() if k != "rank"
    }
