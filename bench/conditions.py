"""The conditions a run happened under: machine, load, software versions, date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

from harness.process import REPO


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def filesystem_of(path: Path) -> str:
    """The file system type and device a path lives on (where SQLite and the AOF fsync)."""
    best = None
    for part in psutil.disk_partitions(all=True):
        if str(path).startswith(part.mountpoint) and (
            best is None or len(part.mountpoint) > len(best.mountpoint)
        ):
            best = part
    return f"{best.fstype} on {best.device}" if best else "unknown"


_OUTPUTS = (":!BENCHMARKS.md", ":!bench/results.png")


def git_commit() -> str:
    """The commit the harness ran at, marked when the tree had local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            # The harness's own outputs do not make the measured code dirty.
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *_OUTPUTS],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def load_average() -> str:
    """The 1/5/15-minute load averages, to show how busy the shared machine was."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def collect(mode: str, reps: int, seconds: float, workdir: Path) -> dict[str, str]:
    """The conditions known at the start of a run."""
    now = dt.datetime.now(dt.UTC)
    cores = os.cpu_count() or 0
    memory = psutil.virtual_memory().total / 2**30
    return {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cores} cores ({cpu_model()}), {memory:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        "shared machine": "other engineers may have been running tests on the same cores "
        "during this run; the load averages below show how busy it was",
        "load average at start (1/5/15 min)": load_average(),
        "mode": f"{mode}: every figure is the median of {reps} repetition(s) of "
        f"{seconds:g} s each (after an untimed warm-up), repetitions interleaved across peers",
        "software": f"Python {platform.python_version()}, grpcio {_version('grpcio')}, "
        f"protobuf {_version('protobuf')}, redis-py {_version('redis')}, "
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {_version('SQLAlchemy')}",
        "storage": f"servers' data (SQLite, Redis AOF) under {workdir.parent} "
        f"({filesystem_of(workdir)})",
        "commit": git_commit(),
        "client": "one harness process (the load generator) on one asyncio event loop; "
        "every server runs in its own process, so client and server never share a GIL",
    }
