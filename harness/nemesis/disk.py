"""Storage faults, each a class with `start()` and `heal()`.

- `FullDisk`: a filler file takes every free byte of a file system (start) until
  removed (heal); with `SmallDisk`, a size-limited tmpfs mounted in a directory the
  test owns. The mount is in the host's mount namespace (a cache process started by
  the test must see it), so it is always unmounted on exit, lazily if something
  still holds a file open there. Needs root.
- `StoppedSqliteWriter`: another process takes a SQLite file's write lock and is
  stopped (start) until it is killed (heal), as if a node froze mid-commit.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

_CHUNK = 1 << 20


class SmallDisk:
    """`with SmallDisk(path, size):` a tmpfs of `size` bytes mounted at `path`."""

    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path = path
        self.size_bytes = size_bytes

    def __enter__(self) -> SmallDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes},mode=0755", "tmpfs", self.path],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        done = subprocess.run(["umount", self.path], capture_output=True, timeout=30, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", self.path], capture_output=True, timeout=30, check=True)


class FullDisk:
    """Fills the file system holding `directory` (start) and frees it again (heal)."""

    def __init__(self, directory: Path) -> None:
        self.filler = directory / "filler"

    def start(self) -> int:
        """Write zeros until the disk is full; returns the bytes taken."""
        written = 0
        block = bytes(_CHUNK)
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = _CHUNK
            while size:
                try:
                    written += os.write(fd, block[:size])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    size //= 2  # take the last partial pages too
        finally:
            os.close(fd)
        return written

    def heal(self) -> None:
        """Remove the filler: the space is free again."""
        self.filler.unlink(missing_ok=True)


_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


class StoppedSqliteWriter:
    """A process holding `db`'s write lock, stopped (start) until killed (heal)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Take the write lock (waiting for the current writer), then SIGSTOP."""
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(self.db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._proc = proc
        assert proc.stdout is not None
        if proc.stdout.readline() != "locked\n":
            self.heal()
            raise RuntimeError(f"could not take the write lock of {self.db}")
        proc.send_signal(signal.SIGSTOP)

    def heal(self) -> None:
        """Kill the holder: the lock is released with its process."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
