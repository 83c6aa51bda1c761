"""`make bench-check` reads the ratios BENCHMARKS.md records and judges a new run against
them (no processes: the report is rendered from hand-made results)."""

from __future__ import annotations

import pytest

from bench import report
from bench.check import recorded, regressed
from bench.results import FLOOR, GET_C32, GET_P50, MC_STUB, MGET, SET_C64, Cell, Results
from bench.targets import COST_PER_CALL, Target


def _target(ratio_id: str) -> Target:
    return next(t for t in COST_PER_CALL if t.ratio_id == ratio_id)


def test_the_report_records_every_cost_per_call_ratio_where_the_check_finds_it() -> None:
    results = Results(mode="test")
    for row, ours, floor in (
        (GET_P50, 660.0, 600.0),
        (GET_C32, 900.0, 1000.0),
        (MGET, 45_000.0, 50_000.0),
        (SET_C64, 1_400.0, 2_000.0),
    ):
        results.put(row, FLOOR, Cell.of([floor]))
        results.put(row, MC_STUB, Cell.of([ours]))
    found = recorded(report.render(results))
    assert found == {"get_p50": 1.1, "get_c32": 0.9, "mget100": 0.9, "set_c64": 0.7}
    assert [t.ratio_id for t in COST_PER_CALL] == ["get_p50", "get_c32", "mget100", "set_c64"]


def test_a_ratio_not_measured_is_not_recorded() -> None:
    results = Results(mode="test")
    results.put(GET_P50, FLOOR, Cell.of([600.0]))
    assert recorded(report.render(results)) == {}


@pytest.mark.parametrize(
    ("ratio_id", "before", "now", "worse"),
    [
        ("get_p50", 1.00, 1.19, False),  # latency: higher is worse
        ("get_p50", 1.00, 1.21, True),
        ("set_c64", 0.70, 0.57, False),  # throughput: lower is worse
        ("set_c64", 0.70, 0.55, True),
        ("set_c64", 0.70, 1.50, False),
    ],
)
def test_only_more_than_20_percent_worse_fails(
    ratio_id: str, before: float, now: float, worse: bool
) -> None:
    assert regressed(_target(ratio_id), now, before) is worse
