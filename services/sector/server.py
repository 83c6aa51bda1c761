"""Building the SectorService process from its settings (no side effects on import)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry

from marketcache.v1 import sector_pb2, sector_pb2_grpc
from services.client import create_cache_instance
from services.common.auth import AdminAuth
from services.common.channels import open_channel
from services.common.config import Env
from services.common.errors import ServiceError
from services.common.server import GrpcProcess
from services.market_data.market_session import SessionFreshness
from services.market_data.nyse_calendar import NyseCalendar
from services.sector.cache_manager import SectorCacheManager
from services.sector.config import SectorSettings
from services.sector.fetcher import SectorDataFetcher
from services.sector.market import MarketDataClient
from services.sector.metrics import SectorMetrics
from services.sector.servicer import SectorServicer

log = logging.getLogger(__name__)

SERVICE = sector_pb2.DESCRIPTOR.services_by_name["SectorService"]
# Start-up warming retries while MarketDataService or the cache come up (seconds between).
WARM_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)


@dataclass
class SectorApp:
    """A built SectorService: its server process and the parts tests reach into."""

    process: GrpcProcess
    fetcher: SectorDataFetcher
    cache: SectorCacheManager
    settings: SectorSettings


def build(settings: SectorSettings, registry: CollectorRegistry, env: Env) -> SectorApp:
    """Wire settings into a ready-to-start SectorService process."""
    metrics = SectorMetrics(registry)
    client = (
        create_cache_instance(env, registry=registry, timeout=settings.cache_timeout)
        if settings.caching
        else None
    )
    cache = SectorCacheManager(
        client,
        metrics,
        ttl_data=settings.ttl_data,
        ttl_snapshot=settings.ttl_snapshot,
        ttl_metrics=settings.ttl_metrics,
        retry_seconds=settings.cache_retry_seconds,
        freshness=SessionFreshness(
            NyseCalendar(), settings.session.clock(), settings.session.closed_max
        ),
        disabled_reason=(
            "caching is disabled (CACHE_ENABLED=false)"
            if not settings.cache_enabled
            else "no cache is configured (set CACHE_ADDR)"
        ),
    )
    channel = open_channel(settings.market_data_addr, settings.server.tls)
    market = MarketDataClient(channel, settings.market_data_addr, metrics, settings.market_timeout)
    fetcher = SectorDataFetcher(market, cache, metrics, concurrency=settings.fetch_concurrency)
    servicer = SectorServicer(fetcher, cache, AdminAuth(settings.admin_token), settings.admin_token)

    def register(server: grpc.aio.Server) -> None:
        sector_pb2_grpc.add_SectorServiceServicer_to_server(servicer, server)

    process = GrpcProcess(settings.server, registry, [SERVICE], register)

    async def close() -> None:
        if client is not None:
            await client.close()
        await channel.close(None)

    process.on_stop(close)
    return SectorApp(process=process, fetcher=fetcher, cache=cache, settings=settings)


async def warm_on_start(app: SectorApp) -> bool:
    """The seed's cache warming at start-up (SECTOR_WARM_ON_START), retried while peers start."""
    if not app.cache.enabled:
        log.info("SECTOR_WARM_ON_START is set but caching is off: nothing to warm")
        return False
    for attempt, delay in enumerate((*WARM_RETRY_DELAYS, None), start=1):
        try:
            reply = await app.fetcher.warm([])
        except ServiceError as exc:
            if delay is None:
                log.warning("start-up cache warming gave up after %d attempts: %s", attempt, exc)
                return False
            log.info("start-up cache warming failed (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            continue
        log.info("cache warmed at start-up: %d symbols and the snapshot", reply.warmed)
        return True
    return False


async def serve(settings: SectorSettings, env: Env) -> None:
    """Run SectorService until SIGTERM or SIGINT."""
    app = build(settings, CollectorRegistry(), env)
    await app.process.start()
    await app.process.set_serving(True)
    warming = asyncio.create_task(warm_on_start(app)) if settings.warm_on_start else None
    try:
        await app.process.run_until_signal()
    finally:
        if warming is not None and not warming.done():
            warming.cancel()
