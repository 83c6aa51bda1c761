"""Result records of the reliability tests, rendered into RELIABILITY.md by report.py.

A test calls `record(...)` with what it tried, how many cases or rounds it ran
and what was lost, BEFORE it asserts, so a failing run is recorded too. The
records go to $RELIABILITY_REPORT_DIR (one JSON file per test); without that
variable nothing is written.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPORT_DIR_VAR = "RELIABILITY_REPORT_DIR"


@dataclass
class Record:
    """One test's outcome: what it tried, at what scale, and what was lost."""

    test: str
    tried: str
    cases: str
    lost: str
    # Numbers behind the sentence, shown in the detail section of the report.
    figures: dict[str, Any] = field(default_factory=dict)
    passed: bool = True
    recorded_at: float = field(default_factory=time.time)


def record(
    test: str,
    *,
    tried: str,
    cases: str,
    lost: str,
    figures: dict[str, Any] | None = None,
    passed: bool = True,
) -> Record:
    """Write one record (when RELIABILITY_REPORT_DIR is set) and return it."""
    entry = Record(test, tried, cases, lost, dict(figures or {}), passed)
    directory = os.environ.get(REPORT_DIR_VAR)
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_") or "record"
        tmp = path / f".{name}.json.tmp"
        tmp.write_text(json.dumps(asdict(entry), indent=1, sort_keys=True, default=str))
        tmp.replace(path / f"{name}.json")
    return entry


def load(directory: Path) -> list[Record]:
    """Every record in `directory`, sorted by test name."""
    records = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        records.append(Record(**data))
    return sorted(records, key=lambda r: r.test)


def nothing_lost(count: int, what: str = "acknowledged writes") -> str:
    """The 'lost' cell: 'nothing' when count is 0, else how many of what."""
    return "nothing" if count == 0 else f"{count} {what}"
