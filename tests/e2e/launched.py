"""Run `python -m services.launcher` as a subprocess on ephemeral ports, and stop it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.support.processes import REPO

READY_LINE = "marketcache ready: "
SYNTHETIC_DATE = "2025-01-15"
EPHEMERAL = {
    name: "127.0.0.1:0"
    for name in (
        "CACHE_LISTEN",
        "CACHE_METRICS_LISTEN",
        "MARKET_DATA_LISTEN",
        "MARKET_DATA_METRICS_LISTEN",
        "SECTOR_LISTEN",
        "SECTOR_METRICS_LISTEN",
        "GATEWAY_LISTEN",
    )
}


@dataclass
class Launched:
    """A running launcher: its process, output file and launcher.json summary."""

    popen: subprocess.Popen[bytes]
    output_path: Path
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return str(self.summary["gateway"])

    @property
    def token(self) -> str:
        return str(self.summary["admin_token"])

    @property
    def child_pids(self) -> dict[str, int]:
        return {name: int(info["pid"]) for name, info in self.summary["children"].items()}

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"launcher still running:\n{self.output()}") from None


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: Mapping[str, int], timeout: float = 30.0) -> list[str]:
    """Poll until every pid is gone; returns the names still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = [name for name, pid in pids.items() if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def start_launcher(
    base: Path, env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()
) -> Launched:
    """Start the launcher and wait (with a deadline) for its ready line and summary."""
    base.mkdir(parents=True, exist_ok=True)
    output_path = base / "launcher.out"
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(base)),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "MARKET_SYNTHETIC_DATE": SYNTHETIC_DATE,
        **EPHEMERAL,
        **(env or {}),
    }
    with output_path.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "services.launcher", "--base-dir", str(base), *args],
            cwd=str(REPO),
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    launched = Launched(popen, output_path)
    deadline = time.monotonic() + 90
    while READY_LINE not in launched.output():
        if popen.poll() is not None or time.monotonic() > deadline:
            stop_launcher(launched)
            raise AssertionError(
                f"launcher not ready (exit code {popen.returncode}):\n{launched.output()}"
            )
        time.sleep(0.05)
    launched.summary = json.loads((base / "var" / "run" / "launcher.json").read_text())
    return launched


def stop_launcher(launched: Launched) -> None:
    """SIGINT, then make sure nothing it started is left running."""
    if launched.popen.poll() is None:
        launched.popen.send_signal(signal.SIGINT)
        try:
            launched.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            launched.popen.kill()
            launched.popen.wait(timeout=10)
    for pid in launched.child_pids.values() if launched.summary else ():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def launcher_running(
    base: Path, env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[Launched]:
    launched = start_launcher(base, env, args)
    try:
        yield launched
    finally:
        stop_launcher(launched)
