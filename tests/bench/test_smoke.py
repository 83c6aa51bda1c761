"""`python -m bench --smoke` runs end to end and writes a well-formed report (timings unchecked)."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest

from bench.results import COLUMNS, KV_ROWS, SYSTEM_ROWS
from bench.targets import TARGETS
from tests.bench.markdown_tables import is_figure_or_reason, tables
from tests.support.processes import REPO, run_to_end

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


# The run takes 1-4 minutes on a loaded 2-core machine: its deadline is for a hang only.
RUN_DEADLINE_SECONDS = 600


@pytest.mark.timeout(RUN_DEADLINE_SECONDS + 120)
def test_smoke_run_writes_a_complete_table(tmp_path: Path) -> None:
    committed = [REPO / "BENCHMARKS.md", REPO / "bench" / "results.png"]
    before = [_digest(p) for p in committed]
    out = tmp_path / "out"
    # Past the deadline the failure shows where each process of the run was.
    done = run_to_end(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        tmp_path / "run",
        RUN_DEADLINE_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # The committed report and chart are never overwritten by a smoke run.
    assert [_digest(p) for p in committed] == before

    markdown = (out / "BENCHMARKS.md").read_text()
    assert re.search(r"\*\*date\*\*: \d{4}-\d\d-\d\d \d\d:\d\d UTC", markdown)
    assert re.search(r"\*\*machine\*\*: \d+ cores", markdown)
    parsed = tables(markdown)

    kv = parsed["Key-value workloads, side by side"]
    assert kv[0] == ["Workload", "Unit", *(c.label for c in COLUMNS)]
    rows = {row[0]: row for row in kv[1:]}
    assert list(rows) == [r.label for r in KV_ROWS]
    for label, row in rows.items():
        assert len(row) == 2 + len(COLUMNS), label
        bad = [cell for cell in row[2:] if not is_figure_or_reason(cell)]
        assert not bad, f"{label}: {bad}"
    # The floor needs nothing but this repository, so it always has figures.
    floor = kv[0].index(COLUMNS[0].label)
    assert all(re.match(r"^[\d,.]+", rows[r.label][floor]) for r in KV_ROWS[:5])

    system = {row[0]: row for row in parsed["System workloads (marketcache)"][1:]}
    assert list(system) == [r.label for r in SYSTEM_ROWS]
    for label, row in system.items():
        assert is_figure_or_reason(row[2]), f"{label}: {row[2]}"

    targets = parsed["Targets"][1:]
    assert [t[0] for t in targets] == [t.label for t in TARGETS]
    assert all(t[-1] in ("**met**", "**missed**", "not measured") for t in targets)

    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
