"""The hit rate every service reports (cache stats, sector stats, their gauges)."""

from __future__ import annotations


def hit_rate(hits: int, misses: int) -> float:
    """hits / (hits + misses), 0.0 before any read."""
    total = hits + misses
    return hits / total if total else 0.0
