"""`make takeover` (python -m harness.takeover): one real run of the tool, its record and table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.process import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_one_run_kills_an_owner_and_records_when_its_prefixes_were_served_again(
    tmp_path: Path,
) -> None:
    record, page = tmp_path / "takeover.json", tmp_path / "RELIABILITY.md"
    page.write_text("# Reliability\n\nearlier text stays\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.takeover",
            "--runs=1",
            "--databases=sqlite",
            "--modes=exit-detected",
            "--prefixes=12",
            f"--json={record}",
            f"--reliability={page}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = json.loads(record.read_text())
    assert run["database"] == "sqlite" and run["mode"] == "exit-detected"
    assert run["victim"] in ("node0", "node1", "node2")
    assert run["served_after"] is not None and not run["missed"] and not run["late"]
    text = page.read_text()
    assert "earlier text stays" in text
    assert "| sqlite | exit-detected | 1 | " in text and "<!-- takeover:end -->" in text


def test_an_unknown_mode_is_refused_naming_the_choices() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.takeover", "--modes=sometimes"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown --modes ['sometimes']" in done.stderr and "lease-expiry" in done.stderr
