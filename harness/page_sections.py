"""Generated sections of a page (RELIABILITY.md): each between its own two markers, so
that one tool's run replaces its table and leaves every other section as it stands."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path


def run_stamp() -> str:
    """Which commit a run measured, and when: "commit `abc1234`, 2026-12-07 07:30 UTC"."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"commit `{commit or 'unknown'}`, {when}"


def _pattern(begin: str, end: str) -> re.Pattern[str]:
    return re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)


def put_section(path: Path, begin: str, end: str, section: str) -> None:
    """Put `section` (markers included) into `path`, replacing the one there, or appended."""
    text = path.read_text() if path.exists() else ""
    pattern = _pattern(begin, end)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def kept_section(path: Path, begin: str, end: str) -> str:
    """The section as it stands in `path` ("" when none): other renderers keep it."""
    if not path.exists():
        return ""
    found = _pattern(begin, end).search(path.read_text())
    return found.group(0) if found else ""
