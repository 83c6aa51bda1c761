"""One child process started from the repository, with its log and ready file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class ServiceProcess:
    """A running service subprocess and where it listens."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    ready_file: Path
    env: dict[str, str]
    grpc_address: str = ""
    metrics_port: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    # host:port of an HTTP process (the gateway), from its ready file's "http" key.
    http_address: str = ""

    @property
    def http_url(self) -> str:
        return f"http://{self.http_address}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL and reap: no flush, no drain."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for a graceful exit; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM") from None

    def stop(self) -> None:
        """Best-effort cleanup: SIGTERM, then SIGKILL."""
        if self.popen.poll() is not None:
            return
        # SIGCONT first: a process a test paused (SIGSTOP) would never act on SIGTERM.
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                return
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def spawn(
    module_args: Sequence[str],
    env: Mapping[str, str],
    workdir: Path,
    label: str,
    prefix: Sequence[str] = (),
) -> ServiceProcess:
    """Start `python -m <module_args...>` with `env` over a clean base environment; do not wait.

    The child is told MARKETCACHE_READY_FILE (`<workdir>/<label>.ready.json`), where a
    marketcache process writes its bound addresses once it serves; its output goes to
    `<workdir>/<label>.log`. A `prefix` runs it through another command (for
    example `ip netns exec <ns>`, which execs in place: the pid stays the child's).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / f"{label}.ready.json"
    ready.unlink(missing_ok=True)
    log_path = workdir / f"{label}.log"
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(workdir)),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "LOG_FORMAT": "text",
        "MARKETCACHE_READY_FILE": str(ready),
        **env,
    }
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(
            [*prefix, sys.executable, "-m", *module_args],
            cwd=str(REPO),
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ServiceProcess(
        name=label, popen=popen, log_path=log_path, ready_file=ready, env=full_env
    )
