"""Throwaway PostgreSQL servers built with this machine's tools: a primary and a standby.

The server binaries refuse to run as root, so every tool runs as the `postgres`
user, in a directory under /tmp that user can enter (pytest's tmp dir is private
to root). Ports are free ones; the caller stops everything (`PgSet.destroy`),
even when the test failed. Under CI=true missing binaries fail the test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PG_BIN = Path(os.environ.get("MARKETCACHE_PG_BIN", "/usr/lib/postgresql/15/bin"))
_TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")


def _free_port() -> int:
    # A server's port is fixed at initdb time, so it cannot bind 127.0.0.1:0 itself.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_pg_binaries() -> None:
    """Fail (CI=true) or skip when a server tool or the `postgres` user is missing."""
    missing = [t for t in _TOOLS if not (PG_BIN / t).exists()]
    if shutil.which("runuser") is None:
        missing.append("runuser")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        missing.append("the postgres user")
    if not missing:
        return
    message = f"PostgreSQL server tools missing in {PG_BIN}: {', '.join(missing)} (make deps)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: these tests must run)")
    pytest.skip(message)


def _as_postgres(*argv: str | Path, timeout: float = 120) -> str:
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


@dataclass
class PgNode:
    """One PostgreSQL server: its data directory and port."""

    name: str
    datadir: Path
    port: int

    @property
    def logfile(self) -> Path:
        return self.datadir.parent / f"{self.name}.log"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        _as_postgres(PG_BIN / "pg_ctl", "-D", self.datadir, "-l", self.logfile, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m `mode` (immediate: no shutdown checkpoint, like a crash)."""
        _as_postgres(PG_BIN / "pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop")

    def promote(self) -> None:
        """Make this standby a primary and wait until it is one."""
        _as_postgres(PG_BIN / "pg_ctl", "-D", self.datadir, "-w", "promote")

    def running(self) -> bool:
        pid = self.datadir / "postmaster.pid"
        return pid.exists()

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement (autocommit) and return its rows (none for commands)."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(query, params)
            return list(cursor.fetchall()) if cursor.description else []

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def conf(self, *lines: str) -> None:
        """Append settings to postgresql.conf (read at the next start or reload)."""
        with (self.datadir / "postgresql.conf").open("a") as f:
            f.write("\n".join(lines) + "\n")

    def log_text(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""


@dataclass
class PgSet:
    """The servers of one test under one directory; `destroy` ends them all."""

    base: Path
    nodes: list[PgNode] = field(default_factory=list)

    def primary(self, name: str = "primary") -> PgNode:
        """initdb and start a primary that standbys may stream from."""
        node = PgNode(name, self.base / name, _free_port())
        _as_postgres(
            PG_BIN / "initdb", "-D", node.datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        node.conf(
            f"port = {node.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.base}'",
            "wal_level = replica",
            "max_wal_senders = 8",
            "max_connections = 200",
            # A process kill keeps the page cache, so fsync adds only time here.
            "fsync = off",
            "full_page_writes = off",
        )
        self.nodes.append(node)
        node.start()
        return node

    def standby(self, primary: PgNode, name: str = "standby") -> PgNode:
        """pg_basebackup -R from `primary`, then start it streaming as `name`."""
        node = PgNode(name, self.base / name, _free_port())
        _as_postgres(
            PG_BIN / "pg_basebackup",
            "-h", "127.0.0.1",
            "-p", str(primary.port),
            "-U", "postgres",
            "-D", node.datadir,
            "-R",
            "-X", "stream",
        )  # fmt: skip
        # cluster_name becomes the walreceiver's application_name, which
        # synchronous_standby_names refers to.
        node.conf(f"port = {node.port}", f"cluster_name = '{name}'")
        self.nodes.append(node)
        node.start()
        return node

    def destroy(self) -> None:
        """Stop every server (immediately) and delete the directory."""
        for node in self.nodes:
            if node.running():
                # Already gone or stuck: the directory goes below either way.
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    node.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def make_synchronous(primary: PgNode, standby_name: str) -> None:
    """Commits on `primary` wait for `standby_name` to flush them (remote_flush: 'on')."""
    primary.sql(f"ALTER SYSTEM SET synchronous_standby_names = '{standby_name}'")
    primary.sql("SELECT pg_reload_conf()")


@contextmanager
def pg_servers() -> Iterator[PgSet]:
    """A directory the postgres user can enter, and every server built in it stopped after."""
    require_pg_binaries()
    base = Path(tempfile.mkdtemp(prefix="mc-pg-", dir="/tmp"))
    base.chmod(0o755)
    shutil.chown(base, "postgres", "postgres")
    servers = PgSet(base)
    try:
        yield servers
    finally:
        servers.destroy()


def multi_host_url(*nodes: PgNode, database: str = "postgres") -> str:
    """The cache's URL over several servers: libpq tries them in order, keeping the writable one."""
    hosts = "&".join(f"host=127.0.0.1:{n.port}" for n in nodes)
    return (
        f"postgresql+psycopg://postgres@/{database}?{hosts}"
        "&target_session_attrs=read-write&connect_timeout=3"
    )
