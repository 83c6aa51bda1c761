"""The report, targets and statistics on hand-made results (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chart, report
from bench.profile import top_frames
from bench.results import (
    COLUMNS,
    FLOOR,
    GET_P50,
    KV_ROWS,
    MC_STUB,
    MEMORY,
    MGET,
    REDIS,
    STAMPEDE_CALLS,
    SYSTEM_ROWS,
    Cell,
    Results,
)
from bench.stats import median, percentile
from bench.targets import TARGETS, judge
from tests.bench.markdown_tables import is_figure_or_reason, number, tables


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(list(reversed(values)), 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_median_of_repetitions() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert Cell.of([10.0, 30.0, 20.0]).value == 20.0


def test_ratio_target_met_and_missed() -> None:
    get_target = next(t for t in TARGETS if t.row is GET_P50)
    results = Results(mode="test")
    results.put(GET_P50, FLOOR, Cell.of([100.0]))
    results.put(GET_P50, MC_STUB, Cell.of([110.0]))
    verdict = judge(results, get_target)
    assert verdict.ratio == pytest.approx(1.1)
    assert verdict.met is True
    results.put(GET_P50, MC_STUB, Cell.of([120.0]))
    assert judge(results, get_target).met is False


def test_min_target_and_missing_reference() -> None:
    mget_target = next(t for t in TARGETS if t.row is MGET)
    results = Results(mode="test")
    results.put(MGET, MC_STUB, Cell.of([80.0]))
    assert judge(results, mget_target).met is None  # no floor figure: not judged
    results.put(MGET, FLOOR, Cell.of([100.0]))
    assert judge(results, mget_target).met is False
    memory_target = next(t for t in TARGETS if t.row is MEMORY)
    results.put(MEMORY, REDIS, Cell.of([100.0]))
    results.put(MEMORY, MC_STUB, Cell.of([150.0]))
    assert judge(results, memory_target).met is True


def test_exact_target_checks_every_repetition() -> None:
    stampede = next(t for t in TARGETS if t.row is STAMPEDE_CALLS)
    results = Results(mode="test")
    results.put_system(STAMPEDE_CALLS, Cell.of([1.0, 1.0, 1.0]))
    assert judge(results, stampede).met is True
    # The median is 1, but one stampede made two upstream calls.
    results.put_system(STAMPEDE_CALLS, Cell.of([1.0, 2.0, 1.0]))
    assert judge(results, stampede).met is False


def test_render_has_every_row_and_reason(tmp_path: Path) -> None:
    results = Results(mode="test", conditions={"date": "2026-01-01 00:00 UTC"})
    results.put(GET_P50, FLOOR, Cell.of([123.4, 125.0, 130.0]))
    results.put(GET_P50, REDIS, Cell.absent("no redis | here"))
    results.put(MEMORY, MC_STUB, Cell.of([412.0], "100,000 keys"))
    results.put_system(STAMPEDE_CALLS, Cell.of([1.0]))
    parsed = tables(report.render(results))
    kv = parsed["Key-value workloads, side by side"]
    assert kv[0][2:] == [c.label for c in COLUMNS]
    by_label = {row[0]: row for row in kv[1:]}
    assert set(by_label) == {r.label for r in KV_ROWS}
    assert number(by_label[GET_P50.label][2]) == 125.0
    assert by_label[GET_P50.label][3].startswith("absent: no redis")
    assert by_label[MEMORY.label][7] == "412 (100,000 keys)"
    for row in kv[1:]:
        assert all(is_figure_or_reason(cell) for cell in row[2:]), row
    system = {row[0]: row for row in parsed["System workloads (marketcache)"][1:]}
    assert set(system) == {r.label for r in SYSTEM_ROWS}
    assert number(system[STAMPEDE_CALLS.label][2]) == 1.0
    targets = parsed["Targets"][1:]
    assert [t[0] for t in targets] == [t.label for t in TARGETS]
    stampede = next(t for t in targets if t[0].startswith("Exactly"))
    assert stampede[-1] == "**met**"
    chart.draw(results, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_top_frames_are_shares_of_busy_samples(tmp_path: Path) -> None:
    raw = tmp_path / "cache.raw"
    raw.write_text(
        "main (x.py:1);Handle._run (asyncio/events.py:80);Get (services/cache/servicer.py:60) 3\n"
        "main (x.py:1);Handle._run (asyncio/events.py:80);Get (services/cache/servicer.py:61) 1\n"
        "main (x.py:1);EpollSelector.select (selectors.py:469) 6\n"
    )
    lines = top_frames(raw)
    # 4 busy samples, all in Get (line numbers folded); idle and asyncio frames left out.
    assert lines[0].split() == ["100.0%", "Get", "(services/cache/servicer.py)"]
    assert not any("selectors" in line or "asyncio" in line for line in lines)
