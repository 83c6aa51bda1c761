"""`python -m services.launcher` as a user runs it: ready, serving, and stopping everything."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from services.sector.catalog import SECTORS
from tests.conftest import free_port
from tests.e2e.launched import alive, start_launcher, stop_launcher, wait_gone
from tests.gateway.stack import request

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_sigint_stops_every_child_and_exits_zero(tmp_path: Path) -> None:
    launched = start_launcher(tmp_path)
    try:
        output = launched.output()
        assert f"admin token    {launched.token}" in output
        for name in ("cache", "market_data", "sector", "gateway"):
            assert f"\n{name:<12} | " in output  # its log lines, prefixed
        snapshot = request(launched.url, "GET", "/api/v1/sectors/snapshot")
        assert snapshot.status == 200
        assert [s["symbol"] for s in snapshot.body["sectors"]] == list(SECTORS)
        pids = launched.child_pids
        assert set(pids) == {"cache", "market_data", "sector", "gateway"}

        launched.popen.send_signal(signal.SIGINT)
        assert launched.wait() == 0, launched.output()
        assert wait_gone(pids) == []
        output = launched.output()
        assert "SIGINT received: stopping every process" in output
        # Stopped in reverse order of start, each one gracefully.
        stops = [output.index(f"{name} stopped") for name in ("gateway", "sector", "cache")]
        assert stops == sorted(stops), output
        assert output.rstrip().endswith("all processes stopped")
    finally:
        stop_launcher(launched)


def test_a_child_that_dies_stops_the_rest_and_the_exit_code_says_so(tmp_path: Path) -> None:
    launched = start_launcher(tmp_path, args=("--cache-replicas", "2"))
    try:
        pids = launched.child_pids
        assert set(pids) == {"cache-1", "cache-2", "market_data", "sector", "gateway"}
        os.kill(pids["sector"], signal.SIGKILL)

        assert launched.wait() == 1, launched.output()
        assert wait_gone(pids) == []
        output = launched.output()
        assert "sector exited unexpectedly (killed by SIGKILL)" in output
        assert "all processes stopped; exit code 1" in output
    finally:
        stop_launcher(launched)


def test_a_child_that_cannot_start_is_reported_and_nothing_is_left(tmp_path: Path) -> None:
    # A malformed setting makes market_data exit 2 at start, after the cache started.
    with pytest.raises(AssertionError, match=r"exit code 1\)") as caught:
        start_launcher(tmp_path, {"MARKET_PROVIDER": "nonsense"})
    output = str(caught.value)
    assert "market_data exited before it was ready (exit code 2)" in output
    assert "market_data  | configuration error: MARKET_PROVIDER" in output
    cache = json.loads((tmp_path / "var" / "run" / "cache.ready.json").read_text())
    assert not alive(int(cache["pid"]))


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="`make deps` installs prometheus")
def test_prometheus_scrapes_every_process_where_it_listens(tmp_path: Path) -> None:
    port = free_port()
    launched = start_launcher(tmp_path, {"PROMETHEUS_PORT": str(port)}, ("--prometheus",))
    try:
        url = f"http://127.0.0.1:{port}"
        assert launched.summary["prometheus"] == url
        assert f"prometheus     {url}" in launched.output()
        deadline = time.monotonic() + 45
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            targets = request(url, "GET", "/api/v1/targets").body["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in targets}
            if set(health.values()) == {"up"}:
                break
            time.sleep(0.2)
        assert health == dict.fromkeys(
            ("cache", "market-data", "sector", "gateway", "prometheus"), "up"
        )
        rules = request(url, "GET", "/api/v1/rules").body["data"]["groups"]
        assert rules, "deploy/prometheus/rules.yml was not loaded"
    finally:
        stop_launcher(launched)
