"""A full disk under a SQLite cache (a small tmpfs, filled by harness/nemesis/disk.py):
reads of acknowledged data go on past several leases, writes are refused with
RESOURCE_EXHAUSTED naming the disk, the alarm is exported, and writes resume once
the space returns. The same on PostgreSQL, whose database lives in a tablespace on
such a tmpfs. Also the CACHE_DB_MAX_BYTES quota. Needs root (mount).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest

from harness.nemesis.disk import FullDisk, SmallDisk
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import from_value, to_value
from tests.support.polling import eventually_blocking
from tests.support.postgres import PG_ADMIN_DSN, require_postgres
from tests.support.processes import ServiceProcess, running

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

C = grpc.StatusCode
LEASE_S = 2.0
TIMEOUT = 30.0
BLOB = "x" * 50_000


def _env(db: Path | str, **extra: str) -> dict[str, str]:
    return {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": db if isinstance(db, str) else f"sqlite:///{db}",
        "CACHE_LEASE_SECONDS": str(LEASE_S),
        **extra,
    }


@pytest.fixture
def stub(request: pytest.FixtureRequest) -> Iterator[cache_pb2_grpc.CacheServiceStub]:
    proc: ServiceProcess = request.getfixturevalue("proc")
    with grpc.insecure_channel(proc.grpc_address) as channel:
        yield cache_pb2_grpc.CacheServiceStub(channel)


def _set(stub: cache_pb2_grpc.CacheServiceStub, key: str) -> grpc.RpcError | None:
    try:
        stub.Set(cache_pb2.SetRequest(key=key, value=to_value(BLOB + key)), timeout=TIMEOUT)
    except grpc.RpcError as exc:
        return exc
    return None


def _alarm(proc: ServiceProcess) -> float:
    url = f"http://127.0.0.1:{proc.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("cache_db_disk_full "):
                return float(line.split()[1])
    raise AssertionError("cache_db_disk_full is not exported")


def _write_until_refused(stub: cache_pb2_grpc.CacheServiceStub, acked: list[str]) -> str:
    """Write new keys until one is refused; every other answer must be OK. Its message."""
    for i in range(2000):
        key = f"full:w{i}"
        error = _set(stub, key)
        if error is None:
            acked.append(key)
            continue
        assert error.code() == C.RESOURCE_EXHAUSTED, f"{key}: {error.code()} {error.details()}"
        return str(error.details())
    raise AssertionError("2000 writes of 50 kB on a full disk were all acknowledged")


def _read_all(stub: cache_pb2_grpc.CacheServiceStub, keys: list[str]) -> None:
    got = {}
    for i in range(0, len(keys), 40):  # 2 MB replies: under the message limit
        reply = stub.MGet(cache_pb2.MGetRequest(keys=keys[i : i + 40]), timeout=TIMEOUT)
        got.update({item.key: from_value(item.value) for item in reply.results if item.found})
    missing = [k for k in keys if got.get(k) != BLOB + k]
    assert not missing, f"{len(missing)} acknowledged keys not read back, e.g. {missing[:3]}"


@pytest.fixture
def proc(tmp_path: Path) -> Iterator[ServiceProcess]:
    with (
        SmallDisk(tmp_path / "disk", 48 << 20),
        running("cache", _env(tmp_path / "disk" / "cache.db"), tmp_path) as proc,
    ):
        yield proc


def _keeps_reads_refuses_writes_and_recovers(
    proc: ServiceProcess, stub: cache_pb2_grpc.CacheServiceStub, disk: FullDisk
) -> None:
    acked = [f"full:a{i}" for i in range(20)]
    for key in acked:
        assert _set(stub, key) is None
    disk.start()
    message = _write_until_refused(stub, acked)
    assert "disk" in message and "not applied" in message, message
    assert _alarm(proc) == 1.0

    # Several leases long: the heartbeat goes on, so the node keeps its prefix.
    until = time.monotonic() + 4 * LEASE_S
    while time.monotonic() < until:
        _read_all(stub, acked)
        error = _set(stub, "full:refused")
        assert error is not None and error.code() == C.RESOURCE_EXHAUSTED
        time.sleep(0.2)  # a pace for the reads, not a wait for an event
    assert "lease heartbeat failed" not in proc.log()

    disk.heal()
    healed = time.monotonic()
    eventually_blocking(lambda: _set(stub, "full:after") is None, 30, "a write after the heal")
    print(f"\nwrites accepted again {time.monotonic() - healed:.2f}s after the space returned")
    assert _alarm(proc) == 0.0
    _read_all(stub, [*acked, "full:after"])


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root")
def test_a_full_disk_keeps_reads_refuses_writes_and_recovers(
    tmp_path: Path, proc: ServiceProcess, stub: cache_pb2_grpc.CacheServiceStub
) -> None:
    _keeps_reads_refuses_writes_and_recovers(proc, stub, FullDisk(tmp_path / "disk"))


@pytest.mark.postgres
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root")
def test_a_full_postgresql_disk_keeps_reads_refuses_writes_and_recovers(tmp_path: Path) -> None:
    require_postgres()
    # The server's own user must reach the mount: not under pytest's private tmp dir.
    mount = Path(tempfile.mkdtemp(prefix="marketcache-pgdisk-"))
    mount.chmod(0o755)
    name = f"mc_full_{uuid.uuid4().hex[:12]}"
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        with SmallDisk(mount, 32 << 20), psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            shutil.chown(mount, "postgres", "postgres")
            admin.execute(f"CREATE TABLESPACE {name} LOCATION '{mount}'")
            try:
                admin.execute(f'CREATE DATABASE "{name}" TABLESPACE {name}')
                with (
                    running("cache", _env(f"{base}/{name}"), tmp_path) as proc,
                    grpc.insecure_channel(proc.grpc_address) as channel,
                ):
                    stub = cache_pb2_grpc.CacheServiceStub(channel)
                    _keeps_reads_refuses_writes_and_recovers(proc, stub, FullDisk(mount))
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.execute(f"DROP TABLESPACE IF EXISTS {name}")
    finally:
        mount.rmdir()


def test_the_quota_refuses_writes_before_the_disk_is_full(tmp_path: Path) -> None:
    env = _env(tmp_path / "cache.db", CACHE_DB_MAX_BYTES="2MiB")
    with (
        running("cache", env, tmp_path) as proc,
        grpc.insecure_channel(proc.grpc_address) as channel,
    ):
        stub = cache_pb2_grpc.CacheServiceStub(channel)
        acked: list[str] = []
        message = _write_until_refused(stub, acked)
        assert "CACHE_DB_MAX_BYTES" in message, message
        assert _alarm(proc) == 1.0
        _read_all(stub, acked)
