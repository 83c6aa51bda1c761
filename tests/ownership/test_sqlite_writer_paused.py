"""SIGSTOP of the process holding SQLite's write lock stalls every process on the
file: that is SQLite's nature (one writer per file, a file lock nobody can break),
measured here and stated in docs/ownership.md; PostgreSQL is the answer.

Another process takes the write lock (BEGIN IMMEDIATE) and is stopped
(harness/nemesis/disk.py). The cache
node's writes wait, its lease heartbeats wait on the same lock, so its reads are
refused once its lease validity lapses; once the stopped process dies, it serves
again. The figures are printed (pytest -s) for the docs.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from harness.nemesis.disk import StoppedSqliteWriter
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import to_value
from tests.ownership.cluster import LEASE_SECONDS, node_env
from tests.support.polling import eventually_blocking
from tests.support.processes import running

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]


def _answers(
    stub: cache_pb2_grpc.CacheServiceStub, call: str, timeout: float, key: str = "held:k"
) -> grpc.StatusCode:
    try:
        if call == "get":
            stub.Get(cache_pb2.GetRequest(key=key), timeout=timeout)
        else:
            stub.Set(cache_pb2.SetRequest(key=key, value=to_value(2)), timeout=timeout)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_a_stopped_holder_of_the_write_lock_stalls_the_node_until_it_dies(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.db"
    env = node_env(f"sqlite:///{db}", "node")
    with (
        running("cache", env, tmp_path) as proc,
        grpc.insecure_channel(proc.grpc_address) as channel,
    ):
        stub = cache_pb2_grpc.CacheServiceStub(channel)
        assert _answers(stub, "set", 30) == grpc.StatusCode.OK
        holder = StoppedSqliteWriter(db)
        try:
            holder.start()
            stopped = time.monotonic()
            # Writes wait for the lock (busy_timeout), whatever their deadline.
            # (Another key: a read of a key whose write is in flight waits for it.)
            assert _answers(stub, "set", 0.5, "held:other") == grpc.StatusCode.DEADLINE_EXCEEDED
            # Reads go on from memory until the lease's local validity lapses.
            eventually_blocking(
                lambda: _answers(stub, "get", 1) == grpc.StatusCode.UNAVAILABLE,
                6 * LEASE_SECONDS,
                "reads refused once the lease could not be renewed",
            )
            refused_after = time.monotonic() - stopped  # a figure, not a pass mark
            holder.heal()
            died = time.monotonic()
            eventually_blocking(
                lambda: _answers(stub, "set", 5) == grpc.StatusCode.OK,
                30,
                "writes again once the holder died",
            )
            back_after = time.monotonic() - died
        finally:
            holder.heal()
        print(
            f"\nwrite lock held by a stopped process: reads refused after {refused_after:.2f}s "
            f"(lease {LEASE_SECONDS}s), writes back {back_after:.2f}s after it died"
        )
