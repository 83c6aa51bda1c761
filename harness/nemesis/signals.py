"""Process faults: pause (SIGSTOP) and resume, and kill -9, of a whole process group.

The harness starts every service in a session of its own (`start_new_session`),
so signalling the group reaches any child it spawned too.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), sig)


def pause(pid: int) -> None:
    """SIGSTOP the process group of `pid`: it stops mid-instruction, sockets open."""
    _signal_group(pid, signal.SIGSTOP)


def resume(pid: int) -> None:
    """SIGCONT the process group of `pid`."""
    _signal_group(pid, signal.SIGCONT)


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """`pid` stopped for the duration of a `with` block, resumed whatever happens."""
    pause(pid)
    try:
        yield
    finally:
        resume(pid)


def kill9(pid: int) -> None:
    """SIGKILL the process group of `pid`: no flush, no drain, no goodbye."""
    _signal_group(pid, signal.SIGKILL)
