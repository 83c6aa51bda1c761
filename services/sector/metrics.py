"""SectorService's own Prometheus metrics (the gRPC server metrics come from services.common)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.hit_rate import hit_rate

NAMESPACES = ("sectors", "snapshots", "metrics")


class SectorMetrics:
    """Cache lookups per namespace, snapshot build latency, market data errors."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.hits = Counter(
            "sector_cache_hits_total",
            "Sector cache lookups answered by the cache, per namespace.",
            ["namespace"],
            registry=registry,
        )
        self.misses = Counter(
            "sector_cache_misses_total",
            "Sector cache lookups not in the cache (or skipped while it is down), per namespace.",
            ["namespace"],
            registry=registry,
        )
        self.cache_errors = Counter(
            "sector_cache_errors_total",
            "Cache calls that failed and were answered without the cache, per operation.",
            ["operation"],
            registry=registry,
        )
        self.hit_rate = Gauge(
            "sector_cache_hit_rate",
            "Hits / (hits + misses) of this process's sector cache lookups since start "
            "(0 before the first lookup). The seed alerts below 0.7.",
            registry=registry,
        )
        self.hit_rate.set_function(self._hit_rate)
        self.cache_available = Gauge(
            "sector_cache_available",
            "1 when caching is enabled and the cache answered the last call, else 0 (degraded).",
            registry=registry,
        )
        self.snapshot_build = Histogram(
            "sector_snapshot_build_seconds",
            "Time to build a sector snapshot on a snapshot cache miss.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.market_errors = Counter(
            "sector_market_data_errors_total",
            "MarketDataService calls that failed, per method and gRPC code.",
            ["method", "code"],
            registry=registry,
        )
        for namespace in NAMESPACES:
            self.hits.labels(namespace)
            self.misses.labels(namespace)
        for method in ("GetQuotes", "GetHistory"):
            self.market_errors.labels(method, "UNAVAILABLE")
        self._hits_total = 0
        self._lookups_total = 0

    def lookup(self, namespace: str, hit: bool) -> None:
        """Count one cache lookup."""
        (self.hits if hit else self.misses).labels(namespace).inc()
        self._lookups_total += 1
        self._hits_total += hit

    def _hit_rate(self) -> float:
        return hit_rate(self._hits_total, self._lookups_total - self._hits_total)
