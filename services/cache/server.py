"""Builds the cache process: store, sweeper, servicer and the shared gRPC bootstrap."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import replace

import grpc
from prometheus_client import CollectorRegistry, Gauge, GCCollector, ProcessCollector

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.clock import Clock, SystemClock
from services.cache.config import CacheSettings, shard_identity
from services.cache.ownership.lease_db import Incarnation, LeaseDb
from services.cache.ownership.lease_metrics import OwnershipMetrics
from services.cache.ownership.leases import LeaseOwnership
from services.cache.ownership.liveness import host_key
from services.cache.ownership.owners import NodeOwnership
from services.cache.rpc.routing import Peers, Router
from services.cache.rpc.servicer import CacheServicer
from services.cache.shards.homes import Homes
from services.cache.shards.sharded_ownership import ShardedOwnership
from services.cache.shards.sharded_store import Cell, ShardedStore
from services.cache.storage.db import CacheDb
from services.cache.storage.replication import ReplicationGauge, check
from services.cache.store.admission import Admission, StoreLimits
from services.cache.store.cache_store import CacheStore
from services.cache.store.interface import Store
from services.cache.store.keys import KeyRules
from services.cache.store.stats import CacheStats
from services.cache.store.ttl_policy import TtlPolicy
from services.cache.sweeper import Sweeper
from services.cache.watch.invalidations import Invalidations
from services.cache.watch.positions import Positions
from services.cache.watch.stream import Watches, WatchMetrics
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
        dbs = [self._db(url, me.token) for url in urls]
        leases = [self._leases(db, me, metrics, clock) for db in dbs]
        # Shards (#16): one database, leases and store per URL, each prefix at its home.
        self._homes: Homes | None = None
        self.ownership: NodeOwnership = leases[0]
        if settings.db_urls:
            self._homes = Homes([shard_identity(url) for url in urls])
            sharded = ShardedOwnership(leases, self._homes)
            # Each shard's leases pointed these gauges at themselves; they count all.
            metrics.watch(sharded.held, lambda: sum(1 for m in sharded.members() if m.alive))
            self.ownership = sharded
        # One hub of positions and invalidations that every shard's store feeds:
        # Watch serves every prefix, whatever its home database.
        changes = Invalidations(Positions(self.ownership.current_epoch))
        # Each store gets its share of the memory.
        cell_limits = replace(limits, max_memory_bytes=limits.max_memory_bytes // len(urls))
        self.cells = [
            Cell(
                index,
                db,
                CacheStore(
                    db,
                    keys=keys,
                    admission=admission,
                    stats=stats,
                    ownership=ownership,
                    clock=clock,
                    limits=cell_limits,
                    changes=changes,
                ),
                ownership,
            )
            for index, (db, ownership) in enumerate(zip(dbs, leases, strict=True))
        ]
        # The node's store: the one database's, or the shards' together.
        self.store: Store = self.cells[0].store
        if self._homes is not None:
            self.store = ShardedStore(
                self.cells,
                self._homes,
                stats=stats,
                clock=clock,
                prefix_of=lambda key: keys.prefix_of(key, "key"),
                max_memory_bytes=limits.max_memory_bytes,
            )
        cells = self.cells
        Gauge(
            "cache_db_disk_full",
            "1 while writes are refused because the database's disk is full or "
            "CACHE_DB_MAX_BYTES is reached (reads go on), else 0.",
            registry=registry,
        ).set_function(lambda: float(any(c.db.disk.full for c in cells)))
        self.sweeper = Sweeper(self.store, settings.sweep_seconds)
        self.peers = Peers(settings.server.tls)
        self.servicer = CacheServicer(
            self.store,
            Router(
                self.ownership,
                self.peers,
                metrics,
                node_id=settings.node_id,
                address=self.advertised_address,
            ),
            keys=keys,
            admission=admission,
            ownership=self.ownership,
            auth=AdminAuth(settings.admin_token),
            enabled=settings.enabled,
            max_reply_bytes=settings.server.max_message_bytes,
            node_id=settings.node_id,
            watches=Watches(changes, self.ownership, WatchMetrics(registry)),
        )
        self.process = GrpcProcess(settings.server, registry, [SERVICE], self._register)
        self.process.on_stop(self._close)

    def _db(self, url: str, session_token: str) -> CacheDb:
        """The database of one URL."""
        settings = self.settings
        return CacheDb(
            url,
            synchronous=settings.sqlite_synchronous,
            pool_size=settings.read_threads + 2,
            idle_transaction_timeout=settings.lease_seconds,
            max_bytes=settings.db_max_bytes,
            owner=settings.node_id,
            session_token=session_token,
        )

    def _leases(
        self, db: CacheDb, me: Incarnation, metrics: OwnershipMetrics, clock: Clock
    ) -> LeaseOwnership:
        """This node's leases in one database."""
        settings = self.settings
        return LeaseOwnership(
            LeaseDb(db, me, self.advertised_address, settings.lease_seconds, clock.monotonic),
            metrics,
            monotonic=clock.monotonic,
            detect_exits=settings.detect_local_exits,
        )

    def store_of(self, prefix: str) -> CacheStore:
        """The store of `prefix`'s home database (for inspection: its state, its gate)."""
        return self.cells[0 if self._homes is None else self._homes.index(prefix)].store

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
        await self.store.open()
        self.sweeper.start()
        await self.process.set_serving(True)

    async def stop(self) -> None:
        """NOT_SERVING, drain RPCs, commit what is queued, close the database."""
        await self.process.stop()

    async def _close(self) -> None:
        await self.sweeper.stop()
        await self.store.close()
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
