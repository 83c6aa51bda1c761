"""MarketDataService settings, read once from the environment; bad values fail at start."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.common.config import ConfigError, Env
from services.common.server import ServerOptions
from services.market_data.market_session import SessionSettings
from services.market_data.refresh_ahead import RefreshPolicy
from services.market_data.resilience import RetryPolicy
from services.market_data.ttl_policy import TtlPolicy

PROVIDERS = ("synthetic", "fmp", "alphavantage")
# Per-minute limits each provider's plans start at; 0 means no client-side limit.
DEFAULT_RATE_PER_MINUTE = {"synthetic": 0.0, "fmp": 300.0, "alphavantage": 5.0}
_KEY_VARS = {"fmp": "FMP_API_KEY", "alphavantage": "ALPHAVANTAGE_API_KEY"}


@dataclass(frozen=True)
class RateLimit:
    """A token bucket's refill rate and size; per_minute 0 disables it."""

    per_minute: float
    burst: int


@dataclass(frozen=True)
class BreakerSettings:
    """Consecutive failures that open a breaker, and how long it stays open."""

    failures: int
    reset_seconds: float


@dataclass(frozen=True)
class MarketDataSettings:
    """Everything `python -m services.market_data` is configured with."""

    server: ServerOptions
    provider: str
    fmp_base_url: str
    fmp_api: str
    alphavantage_base_url: str
    newsapi_base_url: str
    ttl: TtlPolicy
    retry: RetryPolicy
    provider_rate: RateLimit
    news_rate: RateLimit
    rate_limit_max_wait: float
    breaker: BreakerSettings
    cache_breaker: BreakerSettings
    # A request without a gRPC deadline gets this long.
    request_budget: float
    batch_limit: int
    # Pins "today" for the synthetic provider and the default news date (the
    # older, date-only pin; MARKET_NOW pins the whole clock).
    synthetic_date: dt.date | None
    # MARKET_NOW and MARKET_TTL_CLOSED_MAX.
    session: SessionSettings
    refresh: RefreshPolicy
    # Keys are kept out of repr() so a logged settings object leaks nothing.
    fmp_api_key: str | None = field(default=None, repr=False)
    alphavantage_api_key: str | None = field(default=None, repr=False)
    newsapi_key: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        keys = (self.fmp_api_key, self.alphavantage_api_key, self.newsapi_key)
        return tuple(k for k in keys if k)

    @classmethod
    def from_env(cls, env: Env) -> MarketDataSettings:
        provider = env.choice("MARKET_PROVIDER", "synthetic", PROVIDERS)
        keys = {
            "FMP_API_KEY": env.optional("FMP_API_KEY"),
            "ALPHAVANTAGE_API_KEY": env.optional("ALPHAVANTAGE_API_KEY"),
            "NEWSAPI_KEY": env.optional("NEWSAPI_KEY"),
        }
        key_var = _KEY_VARS.get(provider)
        if key_var is not None and keys[key_var] is None:
            raise ConfigError(f"{key_var}: required when MARKET_PROVIDER={provider}")
        rate = env.number(
            "MARKET_RATE_LIMIT_PER_MINUTE",
            DEFAULT_RATE_PER_MINUTE[provider],
            minimum=0.0,
            maximum=1e6,
        )
        news_rate = env.number("NEWSAPI_RATE_LIMIT_PER_MINUTE", 60.0, minimum=0.0, maximum=1e6)
        session = SessionSettings.from_env(env)
        synthetic_date = _date(env, "MARKET_SYNTHETIC_DATE")
        if session.now is not None and synthetic_date is not None:
            raise ConfigError(
                "MARKET_SYNTHETIC_DATE: set it or MARKET_NOW, not both "
                "(MARKET_NOW pins the whole clock, the synthetic provider's date included)"
            )
        return cls(
            server=ServerOptions.from_env(
                env,
                "market_data",
                "MARKET_DATA_LISTEN",
                "127.0.0.1:50052",
                "MARKET_DATA_METRICS_LISTEN",
                "127.0.0.1:9102",
            ),
            provider=provider,
            fmp_base_url=_base_url(env, "FMP_BASE_URL", "https://financialmodelingprep.com"),
            fmp_api=env.choice("FMP_API", "stable", ("stable", "v3")),
            alphavantage_base_url=_base_url(
                env, "ALPHAVANTAGE_BASE_URL", "https://www.alphavantage.co"
            ),
            newsapi_base_url=_base_url(env, "NEWSAPI_BASE_URL", "https://newsapi.org"),
            ttl=TtlPolicy.from_env(env),
            retry=RetryPolicy(
                attempts=env.integer("MARKET_RETRY_ATTEMPTS", 3, minimum=1, maximum=10),
                base_seconds=env.number(
                    "MARKET_RETRY_BASE_SECONDS", 0.2, minimum=0.0, maximum=10.0
                ),
                max_seconds=env.number("MARKET_RETRY_MAX_SECONDS", 2.0, minimum=0.0, maximum=60.0),
                attempt_timeout=env.number(
                    "MARKET_UPSTREAM_TIMEOUT", 5.0, minimum=0.01, maximum=120.0
                ),
            ),
            provider_rate=RateLimit(
                rate, env.integer("MARKET_RATE_LIMIT_BURST", _burst(rate), minimum=1)
            ),
            news_rate=RateLimit(
                news_rate, env.integer("NEWSAPI_RATE_LIMIT_BURST", _burst(news_rate), minimum=1)
            ),
            rate_limit_max_wait=env.number(
                "MARKET_RATE_LIMIT_MAX_WAIT", 10.0, minimum=0.0, maximum=300.0
            ),
            breaker=BreakerSettings(
                env.integer("MARKET_BREAKER_FAILURES", 5, minimum=1, maximum=1000),
                env.number("MARKET_BREAKER_RESET_SECONDS", 30.0, minimum=0.0, maximum=3600.0),
            ),
            cache_breaker=BreakerSettings(
                env.integer("MARKET_CACHE_BREAKER_FAILURES", 3, minimum=1, maximum=1000),
                env.number("MARKET_CACHE_BREAKER_RESET_SECONDS", 5.0, minimum=0.0, maximum=3600.0),
            ),
            request_budget=env.number("MARKET_REQUEST_TIMEOUT", 15.0, minimum=0.01, maximum=600.0),
            batch_limit=env.integer("MARKET_BATCH_LIMIT", 100, minimum=1, maximum=1000),
            synthetic_date=synthetic_date,
            session=session,
            refresh=RefreshPolicy.from_env(env),
            fmp_api_key=keys["FMP_API_KEY"],
            alphavantage_api_key=keys["ALPHAVANTAGE_API_KEY"],
            newsapi_key=keys["NEWSAPI_KEY"],
        )


def _burst(per_minute: float) -> int:
    # A bucket holding a minute's worth of calls, at least one.
    return max(int(per_minute), 1)


def _base_url(env: Env, name: str, default: str) -> str:
    url = env.url(name, default)
    parts = urlsplit(url)
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        # Show no query string: it might carry a key.
        shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
        extra = " plus a query" if parts.query else ""
        raise ConfigError(
            f"{name}: expected scheme and host only (e.g. {default}); the adapter appends "
            f"the API's own path, got {shown!r}{extra}"
        )
    return url


def _date(env: Env, name: str) -> dt.date | None:
    value = env.optional(name)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name}: expected YYYY-MM-DD, got {value!r}") from None
