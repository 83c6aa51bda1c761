"""Records written by the tests come back in RELIABILITY.md's table, failures marked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.records import REPORT_DIR_VAR, load, nothing_lost, record
from tests.reliability.report import main, render


def test_records_round_trip_into_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPORT_DIR_VAR, str(tmp_path / "records"))
    record(
        "crash | loop",
        tried="kill -9",
        cases="3 rounds",
        lost=nothing_lost(0),
        figures={"a": [1, 2]},
    )
    record("soak", tried="load", cases="9 calls", lost=nothing_lost(2, "errors"), passed=False)
    records = load(tmp_path / "records")
    assert [r.test for r in records] == ["crash | loop", "soak"]
    text = render(records, commit="abc1234", seconds=12.0)
    assert "| crash \\| loop | kill -9 | 3 rounds | nothing |" in text
    assert "| soak | load | 9 calls | **2 errors (FAILED)** |" in text
    assert "**failed: soak**" in text
    assert "- a: 1; 2" in text
    assert "commit `abc1234`" in text


def test_without_the_variable_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REPORT_DIR_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    record("x", tried="y", cases="z", lost="nothing")
    assert list(tmp_path.iterdir()) == []


def test_main_renders_a_directory_and_refuses_an_empty_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "RELIABILITY.md"
    (tmp_path / "empty").mkdir()
    assert main(["--records", str(tmp_path / "empty"), "--out", str(out)]) == 1
    monkeypatch.setenv(REPORT_DIR_VAR, str(tmp_path / "records"))
    record("one", tried="t", cases="c", lost="nothing")
    assert main(["--records", str(tmp_path / "records"), "--out", str(out)]) == 0
    assert "| one | t | c | nothing |" in out.read_text()
