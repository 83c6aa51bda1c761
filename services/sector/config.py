"""SectorService settings, read once from the environment (failing fast naming the variable)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import Env
from services.common.server import ServerOptions
from services.market_data.market_session import SessionSettings

DAY = 86_400


@dataclass(frozen=True)
class SectorSettings:
    """Everything `python -m services.sector` reads from its environment."""

    server: ServerOptions
    market_data_addr: str
    # The feature flag (the seed's isDOCacheEnabled); off means no cache calls at all.
    cache_enabled: bool
    cache_addr: str | None
    # sectors:<SYMBOL> entries; the seed's "sector performance: 15 min".
    ttl_data: int
    # snapshots:latest; short, because a rebuild from cached sectors is cheap.
    ttl_snapshot: int
    # metrics:<SYMBOL> history digests; the seed's "daily data: 1 hour".
    ttl_metrics: int
    warm_on_start: bool
    admin_token: str | None
    # Deadline of each MarketDataService call, seconds.
    market_timeout: float
    # Deadline of each cache call, seconds; a slow cache is treated as a miss.
    cache_timeout: float
    # After a cache failure, skip the cache this long instead of paying a timeout per call.
    cache_retry_seconds: float
    # Concurrent GetHistory calls while building a snapshot.
    fetch_concurrency: int
    # MARKET_NOW and MARKET_TTL_CLOSED_MAX: outside regular hours sector data
    # and snapshots stay fresh until the next session opens (capped).
    session: SessionSettings

    @classmethod
    def from_env(cls, env: Env | None = None) -> SectorSettings:
        env = env or Env()
        return cls(
            server=ServerOptions.from_env(
                env,
                "sector",
                "SECTOR_LISTEN",
                "127.0.0.1:50053",
                "SECTOR_METRICS_LISTEN",
                "127.0.0.1:9103",
            ),
            market_data_addr=env.address("MARKET_DATA_ADDR", "127.0.0.1:50052"),
            cache_enabled=env.flag("CACHE_ENABLED", True),
            cache_addr=_optional_address(env, "CACHE_ADDR"),
            ttl_data=env.integer("SECTOR_TTL_DATA", 900, minimum=1, maximum=30 * DAY),
            ttl_snapshot=env.integer("SECTOR_TTL_SNAPSHOT", 300, minimum=1, maximum=30 * DAY),
            ttl_metrics=env.integer("SECTOR_TTL_METRICS", 3600, minimum=1, maximum=30 * DAY),
            warm_on_start=env.flag("SECTOR_WARM_ON_START", False),
            admin_token=env.optional("ADMIN_TOKEN"),
            market_timeout=env.number("SECTOR_MARKET_TIMEOUT", 10.0, minimum=0.1, maximum=300.0),
            cache_timeout=env.number("SECTOR_CACHE_TIMEOUT", 1.0, minimum=0.05, maximum=60.0),
            cache_retry_seconds=env.number(
                "SECTOR_CACHE_RETRY_SECONDS", 5.0, minimum=0.0, maximum=3600.0
            ),
            fetch_concurrency=env.integer("SECTOR_FETCH_CONCURRENCY", 12, minimum=1, maximum=64),
            session=SessionSettings.from_env(env),
        )

    @property
    def caching(self) -> bool:
        """Whether the cache is both enabled and configured."""
        return self.cache_enabled and self.cache_addr is not None


def _optional_address(env: Env, name: str) -> str | None:
    value = env.optional(name)
    return None if value is None else env.address(name, value)
