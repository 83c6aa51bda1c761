"""RELIABILITY.md's nemesis table: one row per fault class and database, every column
summed from the rounds, the section replaced in place."""

from __future__ import annotations

from pathlib import Path

from harness.nemesis.checks import RoundResult
from harness.nemesis.report import BEGIN, END, render, write_section

# Two rounds of a real run (`python -m harness.nemesis --databases sqlite --faults
# full-disk,kill --each-once --seed 21`): the full disk refused 364 writes.
FULL_DISK = RoundResult(
    "full-disk", "sqlite", "node1", operations=2272, acknowledged=933, refused=364, window=4.75
)
KILL = RoundResult(
    "kill", "sqlite", "node2", operations=5573, acknowledged=2442, unknown=749, window=1.33
)


def _table(text: str) -> list[dict[str, str]]:
    """The table's rows as {header: cell}."""
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header, *body = ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)
    return [dict(zip(header, cells, strict=True)) for cells in body]


def test_each_row_counts_the_writes_refused_as_not_applied() -> None:
    second = RoundResult(
        "full-disk", "sqlite", "node0", operations=100, acknowledged=40, refused=6, window=3.0
    )
    rows = _table(render([FULL_DISK, KILL, second], 600.0))
    by_fault = {row["fault"].split(":")[0]: row for row in rows}
    assert by_fault["full-disk"]["refused writes"] == "370"
    assert by_fault["full-disk"]["rounds"] == "2"
    assert by_fault["full-disk"]["acknowledged writes"] == "973"
    assert by_fault["kill"]["refused writes"] == "0"
    assert by_fault["kill"]["unavailability window (max / median, s)"] == "1.3 / 1.3"
    assert by_fault["kill"]["lost writes"] == by_fault["kill"]["stale reads"] == "0"


def test_the_section_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "RELIABILITY.md"
    path.write_text(f"# Reliability\n\nbefore\n\n{BEGIN}\nold table\n{END}\n\nafter\n")
    write_section(path, [FULL_DISK], 60.0)
    text = path.read_text()
    assert "old table" not in text
    assert text.startswith("# Reliability\n\nbefore\n\n" + BEGIN)
    assert text.endswith(END + "\n\nafter\n")
    assert [row["refused writes"] for row in _table(text)] == ["364"]
