"""Gateway settings, read once from the environment (bad values fail naming the variable)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.config import Env
from services.common.tls import TlsConfig
from services.gateway.cors import CorsPolicy

# Which environment variable holds the address of each backend service.
BACKEND_VARS: dict[str, tuple[str, str]] = {
    "marketcache.v1.CacheService": ("CACHE_ADDR", "127.0.0.1:50051"),
    "marketcache.v1.MarketDataService": ("MARKET_DATA_ADDR", "127.0.0.1:50052"),
    "marketcache.v1.SectorService": ("SECTOR_ADDR", "127.0.0.1:50053"),
}

# A cache value may be 1 MiB of JSON; a batch (mset, sector batch) carries
# several, so the default body limit leaves headroom above one value.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway reads from the environment."""

    listen: str = "127.0.0.1:8080"
    # gRPC service full name -> backend address.
    backends: dict[str, str] = field(
        default_factory=lambda: {name: default for name, (_, default) in BACKEND_VARS.items()}
    )
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Deadline of a backend call when the request sends no Grpc-Timeout, seconds.
    default_timeout: float = 10.0
    # Longest deadline a client may ask for with Grpc-Timeout, seconds.
    max_timeout: float = 300.0
    # How long /readyz waits for each backend's health answer, seconds.
    ready_timeout: float = 2.0
    admin_token: str | None = None
    tls: TlsConfig = field(default_factory=lambda: TlsConfig(None, None, None, False))
    # Origins allowed to call from a browser; empty (CORS off) by default.
    cors: CorsPolicy = field(default_factory=CorsPolicy)

    @classmethod
    def from_env(cls, env: Env | None = None) -> GatewaySettings:
        """Read GATEWAY_* (CORS too), *_ADDR, ADMIN_TOKEN and TLS_* (client side)."""
        env = env or Env()
        return cls(
            listen=env.address("GATEWAY_LISTEN", "127.0.0.1:8080"),
            backends={
                name: env.address(var, default) for name, (var, default) in BACKEND_VARS.items()
            },
            max_body_bytes=env.integer(
                "GATEWAY_MAX_BODY_BYTES",
                DEFAULT_MAX_BODY_BYTES,
                minimum=1024,
                maximum=64 * 1024 * 1024,
            ),
            default_timeout=env.number(
                "GATEWAY_DEFAULT_TIMEOUT", 10.0, minimum=0.001, maximum=3600.0
            ),
            max_timeout=env.number("GATEWAY_MAX_TIMEOUT", 300.0, minimum=0.001, maximum=86400.0),
            ready_timeout=env.number("GATEWAY_READY_TIMEOUT", 2.0, minimum=0.01, maximum=60.0),
            admin_token=env.optional("ADMIN_TOKEN"),
            tls=TlsConfig.from_env(env),
            cors=CorsPolicy.parse(env.optional("GATEWAY_CORS_ORIGINS")),
        )
