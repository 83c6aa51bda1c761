"""The fake market-data upstream as a subprocess, controlled over its /_control endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.processes import REPO


@dataclass
class UpstreamProcess:
    """A running `python -m harness.fakes.upstream` and its base URL."""

    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def _post(self, path: str, body: dict[str, Any], method: str = "POST") -> Any:
        data = json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as reply:
            return json.loads(reply.read())

    def fault(
        self, kind: str, api: str | None = None, times: int | None = None, delay_ms: int = 0
    ) -> None:
        """Inject `kind` for `times` requests to `api` (every API and until cleared by default)."""
        body = {"fault": kind, "api": api, "times": times, "delay_ms": delay_ms}
        self._post("/_control/fault", body)

    def clear(self) -> None:
        self._post("/_control/fault", {}, method="DELETE")

    def calls(self) -> int:
        with urllib.request.urlopen(self.url + "/_control/calls", timeout=10) as reply:
            return int(json.loads(reply.read())["total"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def upstream_process(
    workdir: Path, *, api_key: str, today: str = "2025-01-15"
) -> Iterator[UpstreamProcess]:
    """Start the fake upstream on an ephemeral port; stop it afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / "upstream.ready.json"
    log_path = workdir / "upstream.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.fakes.upstream",
                "--port",
                "0",
                "--ready-file",
                str(ready),
                "--api-key",
                api_key,
                "--today",
                today,
            ],
            cwd=str(REPO),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"fake upstream did not start:\n{log_path.read_text()}")
            time.sleep(0.02)
        yield UpstreamProcess(popen, json.loads(ready.read_text())["url"], log_path)
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=10)
