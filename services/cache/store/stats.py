"""Cache counters: Prometheus series plus the same figures for GetMetrics and Health."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Re-exported for servicer.py, which imports it from here (it is another branch's to change).
from services.common.hit_rate import hit_rate

OTHER = "other"

_COMMIT_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


@dataclass
class PrefixTally:
    """What one prefix label has seen."""

    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    keys: int = 0
    # Bytes its committed entries hold in the in-memory layer (as of the snapshot).
    memory_bytes: int = 0


@dataclass
class Snapshot:
    """Every figure GetMetrics reports."""

    hits: int
    misses: int
    keys: int
    memory_bytes: int
    max_memory_bytes: int
    evictions: int
    expired: int
    sets: int
    deletes: int
    commits: int
    prefixes: dict[str, PrefixTally] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        return hit_rate(self.hits, self.misses)


class _Series:
    __slots__ = ("deletes", "hits", "misses", "sets", "tally")

    def __init__(self, stats: CacheStats, label: str) -> None:
        self.hits = stats.hits.labels(label)
        self.misses = stats.misses.labels(label)
        self.sets = stats.sets.labels(label)
        self.deletes = stats.deletes.labels(label)
        self.tally = PrefixTally()


class CacheStats:
    """The cache's metrics in one registry; prefix labels capped against cardinality DoS.

    Prefixes come from clients, so each new one would be a new series: the first
    `max_prefix_labels` prefixes seen get their own label, every later one is
    counted under "other". Keys are never labels.
    """

    def __init__(self, registry: CollectorRegistry, max_prefix_labels: int = 200) -> None:
        self.max_prefix_labels = max_prefix_labels
        self.hits = Counter(
            "cache_hits_total", "Reads that found a live entry.", ["prefix"], registry=registry
        )
        self.misses = Counter(
            "cache_misses_total", "Reads that found no live entry.", ["prefix"], registry=registry
        )
        self.sets = Counter(
            "cache_sets_total",
            "Entries written (Set and MSet items).",
            ["prefix"],
            registry=registry,
        )
        self.deletes = Counter(
            "cache_deletes_total",
            "Deletes committed (whether or not the key existed).",
            ["prefix"],
            registry=registry,
        )
        self.keys = Gauge(
            "cache_keys",
            "Live entries per prefix (refreshed by each sweep and each GetMetrics).",
            ["prefix"],
            registry=registry,
        )
        self.memory_bytes = Gauge(
            "cache_memory_bytes", "Bytes held by the in-memory layer.", registry=registry
        )
        self.evictions = Counter(
            "cache_evictions_total",
            "Entries pushed out of memory by the memory bound (still in the database).",
            registry=registry,
        )
        self.expired = Counter(
            "cache_expired_total", "Expired entries removed by the sweeper.", registry=registry
        )
        self.commit_seconds = Histogram(
            "cache_commit_seconds",
            "Duration of one group-commit transaction.",
            buckets=_COMMIT_SECONDS,
            registry=registry,
        )
        self.commit_batch_size = Histogram(
            "cache_commit_batch_size",
            "Writes carried by one group-commit transaction.",
            buckets=_BATCH_SIZES,
            registry=registry,
        )
        self.commit_failures = Counter(
            "cache_commit_failures_total",
            "Group-commit transactions that failed (their writes were refused).",
            registry=registry,
        )
        self.fenced = Counter(
            "cache_fenced_writes_total",
            "Writes refused at commit because their lease epoch was no longer current.",
            registry=registry,
        )
        self._series: dict[str, _Series] = {}
        self._evictions = 0
        self._expired = 0
        self._commits = 0

    def watch_memory(self, read: Callable[[], int]) -> None:
        """Report `read()` as cache_memory_bytes at every scrape."""
        self.memory_bytes.set_function(read)

    def label(self, prefix: str) -> str:
        """The metric label for `prefix` (capped; see the class docstring)."""
        if prefix in self._series or len(self._series) < self.max_prefix_labels:
            return prefix
        return OTHER

    def _of(self, prefix: str) -> _Series:
        series = self._series.get(prefix)
        if series is None:
            label = self.label(prefix)
            series = self._series.get(label)
            if series is None:
                series = self._series[label] = _Series(self, label)
        return series

    def read(self, prefix: str, hits: int, misses: int) -> None:
        """Count one call's hits and misses on `prefix` (each counter touched once)."""
        series = self._of(prefix)
        if hits:
            series.hits.inc(hits)
            series.tally.hits += hits
        if misses:
            series.misses.inc(misses)
            series.tally.misses += misses

    def stored(self, prefix: str, count: int = 1) -> None:
        series = self._of(prefix)
        series.sets.inc(count)
        series.tally.sets += count

    def deleted(self, prefix: str) -> None:
        series = self._of(prefix)
        series.deletes.inc()
        series.tally.deletes += 1

    def evicted(self, count: int) -> None:
        if count:
            self.evictions.inc(count)
            self._evictions += count

    def expired_removed(self, count: int) -> None:
        if count:
            self.expired.inc(count)
            self._expired += count

    def committed(self, size: int, seconds: float, ok: bool) -> None:
        if ok:
            self.commit_seconds.observe(seconds)
            self.commit_batch_size.observe(size)
            self._commits += 1
        else:
            self.commit_failures.inc()

    def refused(self, count: int) -> None:
        """Writes refused by their fence (cache_fenced_writes_total)."""
        self.fenced.inc(count)

    def set_keys(self, counts: Mapping[str, int]) -> None:
        """Record live keys per prefix (as counted in the database or in full memory)."""
        by_label: dict[str, int] = {}
        for prefix, count in counts.items():
            series = self._of(prefix)
            label = prefix if self._series.get(prefix) is series else OTHER
            by_label[label] = by_label.get(label, 0) + count
        for label, series in self._series.items():
            series.tally.keys = by_label.get(label, 0)
            self.keys.labels(label).set(series.tally.keys)

    def snapshot(
        self,
        memory_bytes: int,
        max_memory_bytes: int,
        prefix_memory: Mapping[str, int] | None = None,
    ) -> Snapshot:
        """The figures GetMetrics reports (`prefix_memory`: memory bytes per prefix)."""
        by_label: dict[str, int] = {}
        for prefix, size in (prefix_memory or {}).items():
            series = self._of(prefix)
            label = prefix if self._series.get(prefix) is series else OTHER
            by_label[label] = by_label.get(label, 0) + size
        # Copies: the live tallies go on counting after the snapshot is taken.
        tallies = {
            label: dataclasses.replace(s.tally, memory_bytes=by_label.get(label, 0))
            for label, s in self._series.items()
        }
        return Snapshot(
            hits=sum(t.hits for t in tallies.values()),
            misses=sum(t.misses for t in tallies.values()),
            keys=sum(t.keys for t in tallies.values()),
            memory_bytes=memory_bytes,
            max_memory_bytes=max_memory_bytes,
            evictions=self._evictions,
            expired=self._expired,
            sets=sum(t.sets for t in tallies.values()),
            deletes=sum(t.deletes for t in tallies.values()),
            commits=self._commits,
            prefixes=tallies,
        )
