"""One child process started from the repository, with its log and ready file."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


# Every child spawn() started, until seen to have ended: tests check that none
# outlives the test that started it (tests/conftest.py).
_STARTED: list[ServiceProcess] = []


def still_running() -> list[ServiceProcess]:
    """The children spawn() started that have not ended yet."""
    _STARTED[:] = [proc for proc in _STARTED if proc.popen.poll() is None]
    return list(_STARTED)


def stack_of(pid: int) -> str:
    """The Python stack of every thread of process `pid` (py-spy dump), or why not."""
    beside = Path(sys.executable).parent / "py-spy"
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        return "(no stack: py-spy is not installed; `make venv` installs it)"
    try:
        done = subprocess.run(
            [spy, "dump", "--pid", str(pid)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"(no stack: py-spy dump of {pid} did not finish)"
    return done.stdout or f"(no stack: {done.stderr.strip()})"


def run_to_end(
    args: Sequence[str], workdir: Path, timeout: float, *, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run `args` to its end (output kept under `workdir`); past `timeout`, fail with the
    stack of the process and of each of its descendants, then kill them all."""
    workdir.mkdir(parents=True, exist_ok=True)
    out, err = workdir / "stdout.txt", workdir / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        popen = subprocess.Popen(
            args, cwd=cwd, stdout=stdout, stderr=stderr, text=True, start_new_session=True
        )
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            family = [popen.pid] + [c.pid for c in psutil.Process(popen.pid).children(True)]
            stacks = "\n".join(f"--- pid {pid}:\n{stack_of(pid)}" for pid in family)
            os.killpg(popen.pid, signal.SIGKILL)
            for pid in family[1:]:  # children that left the group
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            popen.wait(timeout=30)
            raise AssertionError(
                f"{' '.join(args)} did not end within {timeout}s; stderr ends:\n"
                f"{err.read_text(errors='replace')[-3000:]}\nstacks:\n{stacks}"
            ) from None
    output, errors = out.read_text(errors="replace"), err.read_text(errors="replace")
    return subprocess.CompletedProcess(list(args), popen.returncode, output, errors)


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
            stack = stack_of(self.pid)
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s of SIGTERM; it was at:\n{stack}"
            ) from None

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
            # Cleanup goes on, but a process that ignores SIGTERM is a bug: say where it hung.
            print(
                f"{self.name} (pid {self.pid}) ignored SIGTERM for 15 s; killed. It was at:\n"
                f"{stack_of(self.pid)}",
                file=sys.stderr,
            )
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
    proc = ServiceProcess(
        name=label, popen=popen, log_path=log_path, ready_file=ready, env=full_env
    )
    _STARTED.append(proc)
    return proc
