"""One child process of the launcher: spawned in its own group, logs pumped, stopped politely."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1

# Receives (child name, one line of its output).
LineSink = Callable[[str, str], None]


def die_with_parent() -> None:
    """In the child between fork and exec: SIGTERM it if the launcher itself dies (Linux)."""
    # Without this a SIGKILLed launcher would leave its children running, orphaned.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def describe(code: int | None) -> str:
    """'exit code 1', 'killed by SIGKILL' or 'still running'."""
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


@dataclass
class Child:
    """A process the launcher runs, and where it said it listens (its ready file)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready_file: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None
    exited: asyncio.Task[int] | None = None

    async def spawn(self, cwd: Path, sink: LineSink) -> None:
        """Start the process; its stdout and stderr go to `sink` line by line."""
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=str(cwd),
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group: a terminal's Ctrl-C reaches only the launcher,
            # which then stops the children in order.
            process_group=0,
            preexec_fn=die_with_parent,
        )
        self.pump = asyncio.create_task(self._pump(sink))
        self.exited = asyncio.create_task(self.process.wait())

    async def _pump(self, sink: LineSink) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            sink(self.name, raw.decode(errors="replace").rstrip("\n"))

    def read_ready_file(self) -> bool:
        """Load the ready file into `info`; False until the child has written it."""
        if self.ready_file is None:
            return False
        try:
            self.info = json.loads(self.ready_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        return True

    async def stop(self, grace: float, hurry: asyncio.Event) -> tuple[int, bool]:
        """SIGTERM, wait up to `grace` seconds (less once `hurry` is set), then SIGKILL.

        Returns the exit code and whether it had to be killed.
        """
        process, exited = self.process, self.exited
        assert process is not None and exited is not None
        killed = False
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            hurried = asyncio.create_task(hurry.wait())
            await asyncio.wait([exited, hurried], timeout=grace, return_when="FIRST_COMPLETED")
            hurried.cancel()
            if process.returncode is None:
                killed = True
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        code = await exited
        if self.pump is not None:
            # The last lines (its shutdown log) are worth showing; a grandchild
            # holding the pipe open must not hang us, though.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pump, timeout=5)
        return code, killed
