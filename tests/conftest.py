"""Fixtures every test layer shares."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import psutil
import pytest
from prometheus_client import CollectorRegistry

from harness.process import stack_of, still_running
from tests.support.postgres import fresh_database
from tests.support.processes import REPO

# How long a process a test leaves behind may take to end on its own before it counts as
# leaked (it was told to stop and is still stopping).
LEAK_GRACE_SECONDS = 10.0

# The checkout's own data directory (`make run`, the embedded default database).
CHECKOUT_VAR = REPO / "var"


def _files_under(directory: Path) -> dict[str, tuple[int, int]]:
    """Each file under `directory` with its size and modification time ({} when absent)."""
    if not directory.exists():
        return {}
    return {
        str(path.relative_to(directory)): (stat.st_size, stat.st_mtime_ns)
        for path in directory.rglob("*")
        if path.is_file() and (stat := path.stat())
    }


@pytest.fixture(autouse=True)
def checkout_var_untouched(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test keeps its files under tmp_path: none may create or change the checkout's
    var/ (a process started without CACHE_DB_URL opens ./var/cache.db there)."""
    before = _files_under(CHECKOUT_VAR)
    yield
    after = _files_under(CHECKOUT_VAR)
    changed = sorted(
        name for name in after.keys() | before.keys() if after.get(name) != before.get(name)
    )
    assert not changed, (
        f"{request.node.nodeid} created or changed {CHECKOUT_VAR}: {changed}; give every "
        "process it starts a database under tmp_path (CACHE_DB_URL)"
    )


@pytest.fixture(autouse=True)
def no_process_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A service process a test starts ends with the test (its fixtures included): one
    still running is shown with its stack, killed, and fails the test."""
    before = {id(proc) for proc in still_running()}
    yield
    left: list[str] = []
    for proc in [proc for proc in still_running() if id(proc) not in before]:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=LEAK_GRACE_SECONDS)  # one told to stop, still stopping
            continue
        left.append(f"{proc.name} (pid {proc.pid}):\n{stack_of(proc.pid)}")
        proc.popen.kill()
        proc.popen.wait(timeout=30)
    if left:
        pytest.fail(f"{request.node.nodeid} left processes running: " + "\n".join(left))


# Helpers of the interpreter itself, alive until it exits.
_INTERPRETER_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_run() -> Iterator[None]:
    """Any other process the run started (a test's own Popen, a grandchild) that is still
    running at its end is shown with its stack, killed, and fails the run."""
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    yield
    left = []
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(child.cmdline())
            if (
                child.pid not in before
                and child.status() != psutil.STATUS_ZOMBIE
                and not any(helper in cmdline for helper in _INTERPRETER_HELPERS)
            ):
                left.append(f"pid {child.pid}: {cmdline}\n{stack_of(child.pid)}")
                child.kill()
    assert not left, "processes outlived the test run:\n" + "\n".join(left)


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh Prometheus registry: no test sees another's counters."""
    return CollectorRegistry(auto_describe=True)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh PostgreSQL database, dropped after the test."""
    with fresh_database() as url:
        yield url


def free_port() -> int:
    """A port nobody listens on right now (for processes that cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def grpc_server(
    add_servicers: Callable[[grpc.aio.Server], None],
) -> AsyncIterator[tuple[str, grpc.aio.Server]]:
    """An in-process gRPC server on 127.0.0.1:0 serving what `add_servicers` adds:
    its address and the server (stopped on exit, if the test has not stopped it)."""
    server = grpc.aio.server()
    add_servicers(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", server
    finally:
        await server.stop(None)
