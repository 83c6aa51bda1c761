"""A full disk: a size-limited tmpfs mounted in a directory the test owns, and a
filler file that takes every free byte of it (start) until removed (heal).

The mount is in the host's mount namespace (a cache process started by the test
must see it), so it is always unmounted on exit, lazily if something still holds
a file open there. Needs root.
"""

from __future__ import annotations

import errno
import os
import subprocess
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
