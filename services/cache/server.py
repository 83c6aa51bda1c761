"""Builds the cache process: store, sweeper, servicer and the shared gRPC bootstrap."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import replace

import grpc
from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.admission import Admission, StoreLimits
from services.cache.clock import Clock, SystemClock
from services.cache.config import CacheSettings, shard_identity
from services.cache.db import CacheDb
from services.cache.keys import KeyRules
from services.cache.ownership.lease_db import Incarnation, LeaseDb
from services.cache.ownership.lease_metrics import OwnershipMetrics
from services.cache.ownership.leases import LeaseOwnership
from services.cache.ownership.liveness import host_key
from services.cache.ownership.owners import OwnershipView
from services.cache.replication import ReplicationGauge, check
from services.cache.routing import Peers, Router
from services.cache.servicer import CacheServicer
from services.cache.shards import Cell, ShardedOwnership, ShardedStore
from services.cache.stats import CacheStats
from services.cache.store import CacheStore
from services.cache.sweeper import Sweeper
from services.cache.ttl_policy import TtlPolicy
from services.cache.watch import Watches, WatchMetrics
from services.common.auth import AdminAuth
from services.common.config import parse_address
from services.common.server import GrpcProcess

log = logging.getLogger(__name__)

SERVICE = cache_pb2.DESCRIPTOR.services_by_name["CacheService"]


class CacheServer:
    """One cache process; nothing runs until `start()`."""

    def __init__(
        self,
        settings: CacheSettings,
        registry: CollectorRegistry,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        clock = clock or SystemClock()
        me = Incarnation(
            node_id=settings.node_id,
            token=secrets.token_hex(8),
            pid=os.getpid(),
            host=host_key(),
        )
        metrics = OwnershipMetrics(registry)
        self.replication = ReplicationGauge(registry)
        limits = StoreLimits(
            max_memory_bytes=settings.max_memory_bytes,
            max_value_bytes=settings.max_value_bytes,
            max_batch=settings.max_batch,
            max_prefix_queue=settings.max_prefix_queue,
            commit_max_batch=settings.commit_max_batch,
            read_threads=settings.read_threads,
        )
        # One set of rules, checked by the servicer before routing and by the store.
        keys = KeyRules(settings.prefix_depth)
        admission = Admission(keys, TtlPolicy(settings.default_ttl, settings.max_ttl), limits)
        stats = CacheStats(registry, settings.max_prefix_labels)
        urls = settings.db_urls or (settings.db_url,)
        # Shards (#16): one cell per database, each with its own share of the memory.
        cell_limits = replace(limits, max_memory_bytes=limits.max_memory_bytes // len(urls))
        cells = [
            self._cell(
                i,
                url,
                me=me,
                metrics=metrics,
                keys=keys,
                admission=admission,
                stats=stats,
                clock=clock,
                limits=cell_limits,
            )
            for i, url in enumerate(urls)
        ]
        # With shards, db/ownership/store are the first shard's; `data` and `view` span all.
        self.db, self.ownership, self.store = cells[0].db, cells[0].ownership, cells[0].store
        self.data: CacheStore | ShardedStore = self.store
        self.view: OwnershipView = self.ownership
        if settings.db_urls:
            self.data = ShardedStore(
                cells,
                [shard_identity(url) for url in urls],
                stats=stats,
                metrics=metrics,
                clock=clock,
                prefix_of=lambda key: keys.prefix_of(key, "key"),
                max_memory_bytes=limits.max_memory_bytes,
            )
            self.view = ShardedOwnership(self.data)
        self.cells = cells
        self.sweeper = Sweeper(self.data, settings.sweep_seconds)
        self.peers = Peers(settings.server.tls)
        self.servicer = CacheServicer(
            self.data,
            Router(
                self.view,
                self.peers,
                metrics,
                node_id=settings.node_id,
                address=self.advertised_address,
            ),
            keys=keys,
            admission=admission,
            ownership=self.view,
            auth=AdminAuth(settings.admin_token),
            enabled=settings.enabled,
            max_reply_bytes=settings.server.max_message_bytes,
            node_id=settings.node_id,
            watches=Watches(
                self.store.changes,
                self.ownership,
                WatchMetrics(registry),
                serves=self._first_shard_homes,
            ),
        )
        self.process = GrpcProcess(settings.server, registry, [SERVICE], self._register)
        self.process.on_stop(self._close)

    def _cell(
        self,
        index: int,
        url: str,
        *,
        me: Incarnation,
        metrics: OwnershipMetrics,
        keys: KeyRules,
        admission: Admission,
        stats: CacheStats,
        clock: Clock,
        limits: StoreLimits,
    ) -> Cell:
        """The database, leases and store of one database URL."""
        settings = self.settings
        db = CacheDb(
            url,
            synchronous=settings.sqlite_synchronous,
            pool_size=settings.read_threads + 2,
            idle_transaction_timeout=settings.lease_seconds,
            session_token=me.token,
        )
        ownership = LeaseOwnership(
            LeaseDb(db, me, self.advertised_address, settings.lease_seconds, clock.monotonic),
            metrics,
            monotonic=clock.monotonic,
            detect_exits=settings.detect_local_exits,
        )
        store = CacheStore(
            db,
            keys=keys,
            admission=admission,
            stats=stats,
            ownership=ownership,
            clock=clock,
            limits=limits,
        )
        return Cell(index, db, store, ownership)

    def _register(self, server: grpc.aio.Server) -> None:
        cache_pb2_grpc.add_CacheServiceServicer_to_server(self.servicer, server)

    def advertised_address(self) -> str:
        """Where peers and clients reach this node: CACHE_ADVERTISE_ADDR, else the bound
        address (with this host's name for a wildcard host, which nobody can dial)."""
        if self.settings.advertise_addr:
            return self.settings.advertise_addr
        host, port = parse_address(self.process.address)
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def address(self) -> str:
        """The bound gRPC address (host:port)."""
        return self.process.address

    async def start(self) -> None:
        """Listen (NOT_SERVING), open the store, start sweeping, then report SERVING."""
        await self.process.start()
        # Before any write: a database that may lose acknowledged writes is named now.
        await check(
            [c.db for c in self.cells],
            self.replication,
            require=self.settings.require_sync_replication,
        )
        await self.data.open()
        self.sweeper.start()
        await self.process.set_serving(True)

    async def stop(self) -> None:
        """NOT_SERVING, drain RPCs, commit what is queued, close the database."""
        await self.process.stop()

    def _first_shard_homes(self, prefix: str) -> bool:
        # Watch is served from the first shard's invalidations (a limit of shards
        # for now): a prefix homed elsewhere is refused, so no client trusts it.
        data = self.data
        return not isinstance(data, ShardedStore) or data.cell(prefix).index == 0

    async def _close(self) -> None:
        await self.sweeper.stop()
        await self.data.close()
        await self.peers.close()


async def serve(settings: CacheSettings) -> int:
    """Run the cache until SIGTERM/SIGINT; the process exit code."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    server = CacheServer(settings, registry)
    try:
        await server.start()
    except Exception as exc:
        log.error("cache failed to start: %s: %s", type(exc).__name__, exc)
        await server.stop()
        return 1
    await server.process.run_until_signal()
    return 0
