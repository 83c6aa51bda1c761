"""`make nemesis` stopped by SIGTERM (a CI job's end, `kill`) leaves nothing running:
its cache nodes are stopped and its small disk unmounted, as after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.process import REPO
from tests.e2e.launched import alive
from tests.support.polling import eventually_blocking

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.slow]


def _mounted_under(path: Path) -> list[str]:
    mounts = Path("/proc/mounts").read_text().splitlines()
    return [line.split()[1] for line in mounts if line.split()[1].startswith(str(path))]


def test_sigterm_stops_the_run_and_its_nodes(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    log = (tmp_path / "nemesis.log").open("w")
    runner = subprocess.Popen(
        [sys.executable, "-m", "harness.nemesis", "--databases", "sqlite",
         "--faults", "kill", "--seconds", "120", "--workdir", str(workdir)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    pids: list[int] = []
    try:

        def started() -> list[Path] | None:
            found = sorted((workdir / "sqlite").glob("node*.ready.json"))
            return found if len(found) >= 3 else None

        ready = eventually_blocking(started, 120, "the run's three nodes never started")
        pids += [int(json.loads(path.read_text())["pid"]) for path in ready]
        assert all(alive(pid) for pid in pids)
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=120)
        eventually_blocking(
            lambda: not any(alive(pid) for pid in pids), 30, "a node outlived the run"
        )
        assert _mounted_under(tmp_path) == []
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        log.close()
        # What a failed run left behind is not left to the next test.
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for mount in _mounted_under(tmp_path):
            subprocess.run(["umount", "-l", mount], check=False)
