"""Storage faults, each a class with `start()` and `heal()`.

- `FullDisk`: a filler file takes every free byte of a file system (start) until
  removed (heal); with `SmallDisk`, a size-limited tmpfs mounted in a directory the
  test owns. The mount is in the host's mount namespace (a cache process started by
  the test must see it), so it is always unmounted on exit, lazily if something
  still holds a file open there. Needs root.
- `StoppedSqliteWriter`: another process takes a SQLite file's write lock and is
  stopped (start) until it is killed (heal), as if a node froze mid-commit.

The fault class `full-disk` (SQLite, as root) fills the small tmpfs the nemesis
cluster keeps its SQLite file on for the whole run, then frees it: reads go on,
writes are refused RESOURCE_EXHAUSTED (known not applied), and writes resume by
themselves. `StoppedSqliteWriter` is no fault class: every process on the file
stalls behind it, which is SQLite's nature (docs/ownership.md), not something the
nemesis could find.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

import grpc

from harness.nemesis.cluster import NODES, NemesisCluster
from harness.nemesis.faults import FaultContext, register
from harness.process import ServiceProcess
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import to_value

_CHUNK = 1 << 20
# The nemesis cluster's SQLite disk: the file, its WAL, the full-disk fault's blobs,
# and three nodes' reserves (8 MiB each, services/cache/storage/disk.py), with room
# for the alarms to clear (twice a reserve free).
NEMESIS_DISK_BYTES = 96 << 20
# The cluster's SQLite file on that disk.
SQLITE_FILE = "nemesis.db"


def mount_refused() -> str | None:
    """Why `SmallDisk` cannot be mounted here (None: it can)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    return None if shutil.which("mount") else "mount is missing"


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


@register(
    "full-disk",
    "the SQLite file's own small tmpfs filled to the last byte, then freed "
    "(reads go on, writes refused RESOURCE_EXHAUSTED, then resume)",
    ("sqlite",),
    mount_refused,
)
async def full_disk(ctx: FaultContext) -> AsyncIterator[None]:
    directory = ctx.cluster.small_disk
    if directory is None:
        ctx.problems.append("full-disk: the cluster's SQLite file is on no small disk")
        yield
        return
    disk = FullDisk(directory)
    ends = time.monotonic() + ctx.hold
    async with _Blobs(ctx.cluster) as blobs:
        try:
            # A steady workload rewrites its pages in place (the WAL's, and the free
            # pages of earlier rounds' blobs) and may never meet the full disk: empty
            # the WAL first, then grow the database until the nodes raise their alarm.
            await asyncio.to_thread(truncate_wal, directory / SQLITE_FILE)
            await asyncio.to_thread(disk.start)
            alarmed = await blobs.until_alarmed(ends)
            if not alarmed:
                ctx.problems.append("full-disk: no node raised cache_db_disk_full")
            await asyncio.sleep(max(0.0, ends - time.monotonic()))
            yield
        finally:
            disk.heal()
            await blobs.delete()


def truncate_wal(db: Path, tries: int = 10) -> bool:
    """Checkpoint `db`'s WAL into the file and truncate it to nothing; whether it was
    (a checkpoint that meets a reader cannot truncate: it is tried again)."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        for _ in range(tries):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return True
    return False


def disk_alarm(node: ServiceProcess) -> bool:
    """Whether `node` has its cache_db_disk_full alarm up (False: also when it does not answer)."""
    host = node.grpc_address.rsplit(":", 1)[0] or "127.0.0.1"
    url = f"http://{host}:{node.metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            lines = reply.read().decode().splitlines()
    except OSError:
        return False
    gauge = [line.split()[1] for line in lines if line.startswith("cache_db_disk_full ")]
    return gauge == ["1.0"]


class _Blobs:
    """Large values in prefixes of their own (the workload's keys stay apart), written
    through every node to fill the database, deleted once there is room again."""

    KEYS = tuple(f"nemesis-disk{i}:blob" for i in range(9))
    VALUE = "x" * (256 << 10)

    def __init__(self, cluster: NemesisCluster) -> None:
        self.cluster = cluster
        self._channels = [grpc.aio.insecure_channel(cluster.direct(name)) for name in NODES]
        self._stubs = [cache_pb2_grpc.CacheServiceStub(c) for c in self._channels]

    async def __aenter__(self) -> _Blobs:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for channel in self._channels:
            await channel.close(None)

    async def until_alarmed(self, deadline: float) -> list[str]:
        """Write blobs until every node's alarm is up, or `deadline`; the alarmed nodes."""
        request = cache_pb2.SetRequest(value=to_value(self.VALUE), ttl_seconds=60)
        alarmed: list[str] = []
        while time.monotonic() < deadline:
            for i, key in enumerate(self.KEYS):
                request.key = key
                with contextlib.suppress(grpc.aio.AioRpcError):  # refused: the point
                    await self._stubs[i % len(self._stubs)].Set(request, timeout=2)
            nodes = self.cluster.nodes
            alarmed = [n for n in NODES if await asyncio.to_thread(disk_alarm, nodes[n])]
            if len(alarmed) == len(NODES):
                break
        return alarmed

    async def delete(self, within: float = 30.0) -> None:
        """Delete the blobs, once the alarms clear (their TTL ends them otherwise)."""
        deadline = time.monotonic() + within
        left = list(self.KEYS)
        while left and time.monotonic() < deadline:
            key = left[0]
            stub = self._stubs[len(left) % len(self._stubs)]
            try:
                await stub.Delete(cache_pb2.DeleteRequest(key=key), timeout=2)
                left.pop(0)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.2)
