"""Building the MarketDataService process from its settings (no side effects on import)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry

from marketcache.v1 import market_data_pb2, market_data_pb2_grpc
from services.client import create_cache_instance
from services.common.config import Env
from services.common.server import GrpcProcess
from services.market_data.breaker import BreakerState, CircuitBreaker
from services.market_data.cache_aside import Cache, CacheAside
from services.market_data.config import BreakerSettings, MarketDataSettings, RateLimit
from services.market_data.deadline import Clock
from services.market_data.market_session import SessionFreshness
from services.market_data.metrics import ENDPOINTS, MarketMetrics
from services.market_data.nyse_calendar import NyseCalendar
from services.market_data.providers.factory import Providers, build_providers
from services.market_data.providers.http import HttpSessions
from services.market_data.providers.synthetic import SyntheticProvider
from services.market_data.rate_limiter import TokenBucket
from services.market_data.resilience import ProviderGuard
from services.market_data.service import MarketData
from services.market_data.servicer import MarketDataServicer

log = logging.getLogger(__name__)

SERVICE = market_data_pb2.DESCRIPTOR.services_by_name["MarketDataService"]


class _FromEnv:
    """Marker: build the cache client from CACHE_ADDR and CACHE_ENABLED."""


FROM_ENV = _FromEnv()


@dataclass
class MarketDataApp:
    """A built MarketDataService: its server process and the parts tests reach into."""

    process: GrpcProcess
    market: MarketData
    guards: dict[str, ProviderGuard]
    cache: CacheAside
    providers: Providers
    settings: MarketDataSettings


def build(
    settings: MarketDataSettings,
    registry: CollectorRegistry,
    env: Env,
    *,
    cache: Cache | _FromEnv | None = FROM_ENV,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
) -> MarketDataApp:
    """Wire settings into a ready-to-start MarketDataService process.

    `cache` defaults to the client CACHE_ADDR/CACHE_ENABLED describe (None when
    unset or disabled); tests may pass their own.
    """
    metrics = MarketMetrics(registry)
    client: Cache | None = (
        create_cache_instance(env, registry=registry) if isinstance(cache, _FromEnv) else cache
    )

    # The market clock (MARKET_NOW, running on from `wall_clock`) judges
    # sessions and dates; ages and TTLs stay on the real clock.
    market_clock = settings.session.clock(wall_clock)
    calendar = NyseCalendar()

    def today() -> dt.date:
        if settings.synthetic_date is not None:
            return settings.synthetic_date
        return dt.datetime.fromtimestamp(market_clock(), dt.UTC).date()

    if settings.synthetic_date is not None:
        synthetic = SyntheticProvider.for_date(settings.synthetic_date, calendar)
    else:
        synthetic = SyntheticProvider(market_clock, calendar)
    providers = build_providers(settings, today, HttpSessions(), synthetic)
    guards: dict[str, ProviderGuard] = {}
    rates = {providers.prices.name: settings.provider_rate}
    if providers.news.name == "newsapi":
        rates["newsapi"] = settings.news_rate
    for name in (providers.prices.name, providers.news.name):
        if name not in guards:
            endpoints = tuple(e for e in ENDPOINTS if _serves(providers, name, e))
            metrics.initialize_provider(name, endpoints)
            guards[name] = ProviderGuard(
                name,
                breaker=_breaker(name, settings.breaker, metrics, clock),
                limiter=_limiter(name, rates.get(name), settings.rate_limit_max_wait, clock),
                retry=settings.retry,
                metrics=metrics,
            )
    metrics.initialize_breaker("cache")
    cache_aside = CacheAside(
        client,
        ttl=settings.ttl,
        breaker=_breaker("cache", settings.cache_breaker, metrics, clock),
        metrics=metrics,
        refresh=settings.refresh,
        background_budget=settings.request_budget,
        clock=wall_clock,
    )
    market = MarketData(
        prices=providers.prices,
        news=providers.news,
        guards=guards,
        cache=cache_aside,
        ttl=settings.ttl,
        freshness=SessionFreshness(calendar, market_clock, settings.session.closed_max),
        today=today,
        batch_limit=settings.batch_limit,
    )
    servicer = MarketDataServicer(market, settings.request_budget)

    def register(server: grpc.aio.Server) -> None:
        market_data_pb2_grpc.add_MarketDataServiceServicer_to_server(servicer, server)

    process = GrpcProcess(settings.server, registry, [SERVICE], register)

    async def close() -> None:
        await cache_aside.close()
        await providers.sessions.close()
        if client is not None:
            await client.close()

    process.on_stop(close)
    log.info(
        "market data from %s, news from %s, cache %s",
        providers.prices.name,
        providers.news.name,
        "on" if client is not None else "off (CACHE_ADDR unset or CACHE_ENABLED=false)",
    )
    return MarketDataApp(process, market, guards, cache_aside, providers, settings)


def _serves(providers: Providers, name: str, endpoint: str) -> bool:
    if endpoint == "news":
        return providers.news.name == name
    return providers.prices.name == name


def _breaker(
    name: str, settings: BreakerSettings, metrics: MarketMetrics, clock: Clock
) -> CircuitBreaker:
    def moved(old: BreakerState, new: BreakerState) -> None:
        metrics.breaker_moved(name, new)
        level = logging.WARNING if new is BreakerState.OPEN else logging.INFO
        log.log(level, "%s circuit breaker %s -> %s", name, old.name.lower(), new.name.lower())

    return CircuitBreaker(
        name, settings.failures, settings.reset_seconds, clock=clock, on_transition=moved
    )


def _limiter(
    name: str, rate: RateLimit | None, max_wait: float, clock: Clock
) -> TokenBucket | None:
    if rate is None or rate.per_minute <= 0:
        return None
    return TokenBucket(name, rate.per_minute / 60.0, rate.burst, max_wait=max_wait, clock=clock)


async def serve(settings: MarketDataSettings, env: Env) -> None:
    """Run MarketDataService until SIGTERM or SIGINT."""
    app = build(settings, CollectorRegistry(), env)
    await app.process.start()
    await app.process.set_serving(True)
    await app.process.run_until_signal()
