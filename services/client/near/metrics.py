"""The near cache's counters (on the client's registry, or on none)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

FLUSH_REASONS = ("gap", "epoch", "reset", "stream", "silent")


class NearMetrics:
    """cache_near_*: hits, misses, invalidations applied, flushes by reason, bytes held."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.hits = Counter(
            "cache_near_hits_total", "Reads served from the near cache.", registry=registry
        )
        self.misses = Counter(
            "cache_near_misses_total",
            "Reads the near cache could not serve (absent, expired or not vouched for).",
            registry=registry,
        )
        self.invalidations = Counter(
            "cache_near_invalidations_total",
            "Invalidations applied from the owners' Watch streams.",
            registry=registry,
        )
        self.flushes = Counter(
            "cache_near_flushes_total",
            "Prefixes flushed from the near cache, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in FLUSH_REASONS:
            self.flushes.labels(reason)
        self.bytes = Gauge(
            "cache_near_bytes",
            "Bytes the near cache holds (keys, values, overhead).",
            registry=registry,
        )
        self.clock_offset = Gauge(
            "cache_near_clock_offset_seconds",
            "This client's wall clock minus the owners', estimated from their Watch stamps.",
            registry=registry,
        )
