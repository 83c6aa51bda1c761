"""hit_rate: the one ratio the cache, the sector service and their gauges report."""

from __future__ import annotations

import pytest

from services.common.hit_rate import hit_rate


@pytest.mark.parametrize(
    ("hits", "misses", "rate"), [(0, 0, 0.0), (3, 2, 0.6), (0, 4, 0.0), (5, 0, 1.0)]
)
def test_hit_rate_is_hits_over_lookups_and_zero_before_any(
    hits: int, misses: int, rate: float
) -> None:
    assert hit_rate(hits, misses) == rate
