"""Prometheus metrics of MarketDataService; labels never carry a symbol."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.market_data.breaker import BreakerState

ENDPOINTS = ("quote", "history", "news")
UPSTREAM_OUTCOMES = (
    "ok",
    "not_found",
    "unavailable",
    "timeout",
    "bad_response",
    "rate_limited",
    "bad_key",
    "rejected",
    "deadline",
)
CACHE_RESULTS = ("hit", "miss", "error", "bypass")

_UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class MarketMetrics:
    """Every MarketDataService series, registered on the registry passed in."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # One per HTTP call to a provider (retries count again).
        self.upstream_requests = Counter(
            "market_upstream_requests_total",
            "Calls to upstream market-data providers, by outcome.",
            ["provider", "endpoint", "outcome"],
            registry=registry,
        )
        # Duration of each provider call, whatever its outcome.
        self.upstream_seconds = Histogram(
            "market_upstream_seconds",
            "Duration of upstream provider calls in seconds.",
            ["provider", "endpoint"],
            buckets=_UPSTREAM_BUCKETS,
            registry=registry,
        )
        # 0 closed, 1 half-open, 2 open; provider="cache" is the breaker on the cache.
        self.breaker_state = Gauge(
            "market_breaker_state",
            "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
            ["provider"],
            registry=registry,
        )
        # Each change of a breaker's state, labelled with the state entered.
        self.breaker_transitions = Counter(
            "market_breaker_transitions_total",
            "Circuit breaker state changes, by the state entered.",
            ["provider", "state"],
            registry=registry,
        )
        # Calls refused without reaching the provider because its breaker is open.
        self.breaker_rejections = Counter(
            "market_breaker_rejections_total",
            "Calls failed fast because the provider's circuit breaker was open.",
            ["provider"],
            registry=registry,
        )
        # Requests that waited on another request's upstream call instead of making one.
        self.singleflight_merged = Counter(
            "market_singleflight_merged_total",
            "Requests merged into an upstream call already in flight.",
            ["endpoint"],
            registry=registry,
        )
        # Answers served past their freshness because the upstream failed.
        self.stale_served = Counter(
            "market_stale_served_total",
            "Stale cached answers served because the upstream failed.",
            ["endpoint"],
            registry=registry,
        )
        # Refreshes started after answering the reader: "ahead" (XFetch, before
        # expiry) or "revalidate" (a stale copy answered at once, SWR).
        self.background_refreshes = Counter(
            "market_background_refreshes_total",
            "Background refreshes started, by endpoint and kind (ahead, revalidate).",
            ["endpoint", "kind"],
            registry=registry,
        )
        # hit: fresh copy served; miss: none or too old; error: the cache failed;
        # bypass: skipped because the cache's breaker is open.
        self.cache_requests = Counter(
            "market_cache_requests_total",
            "Cache lookups by result: hit, miss, error, bypass.",
            ["result"],
            registry=registry,
        )
        # Time spent waiting for a rate-limiter token (0 when one was free).
        self.rate_limit_wait = Histogram(
            "market_rate_limiter_wait_seconds",
            "Time spent waiting for a client-side rate-limiter token.",
            ["provider"],
            buckets=(0.0, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        # Calls refused because the token would come too late for the deadline.
        self.rate_limited = Counter(
            "market_rate_limiter_rejections_total",
            "Calls refused by the client-side rate limiter.",
            ["provider"],
            registry=registry,
        )
        for result in CACHE_RESULTS:
            self.cache_requests.labels(result)

    def initialize_provider(self, provider: str, endpoints: tuple[str, ...]) -> None:
        """Create a provider's series at zero so rates work from the first scrape."""
        for endpoint in endpoints:
            self.upstream_seconds.labels(provider, endpoint)
            for outcome in UPSTREAM_OUTCOMES:
                self.upstream_requests.labels(provider, endpoint, outcome)
            self.singleflight_merged.labels(endpoint)
            self.stale_served.labels(endpoint)
            for kind in ("ahead", "revalidate"):
                self.background_refreshes.labels(endpoint, kind)
        self.initialize_breaker(provider)
        self.breaker_rejections.labels(provider)
        self.rate_limit_wait.labels(provider)
        self.rate_limited.labels(provider)

    def initialize_breaker(self, name: str) -> None:
        """Create a breaker's series (closed, no transitions yet)."""
        self.breaker_state.labels(name).set(BreakerState.CLOSED.value)
        for state in BreakerState:
            self.breaker_transitions.labels(name, state.name.lower())

    def breaker_moved(self, provider: str, new: BreakerState) -> None:
        """Record a breaker transition."""
        self.breaker_state.labels(provider).set(new.value)
        self.breaker_transitions.labels(provider, new.name.lower()).inc()
