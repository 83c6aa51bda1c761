"""A node whose clocks run slow never serves as owner past its lease's expiry on the
database's clock, the moment another node may take over (docs/ownership.md,
"Clock drift"). The node runs under libfaketime at 95% of real time, monotonic
clock included (harness/nemesis/clock.py). The test holds an EXCLUSIVE lock on the
lease table, so renewals fail while plain reads of it go on, then reads through the
node until it refuses: no read it answered may have been sent after the expiry.
PostgreSQL only: on SQLite every node shares one host's clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import psycopg
import pytest

from harness.nemesis.clock import drifting_env
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import to_value
from tests.ownership.cluster import LEASE_SECONDS, node_env
from tests.support.processes import running

pytestmark = [pytest.mark.postgres, pytest.mark.chaos, pytest.mark.e2e]

# 5% slow: inside what the margin (a quarter of the lease) covers, 25%.
RATE = 0.95


def test_a_node_running_5_percent_slow_stops_serving_before_its_lease_expires(
    tmp_path: Path, pg_url: str
) -> None:
    env = node_env(pg_url, "slow", **drifting_env(RATE))
    with (
        running("cache", env, tmp_path) as proc,
        grpc.insecure_channel(proc.grpc_address) as channel,
    ):
        stub = cache_pb2_grpc.CacheServiceStub(channel)
        stub.Set(cache_pb2.SetRequest(key="drift:k", value=to_value(1)), timeout=30)
        dsn = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn) as lock:
            # Waits for a renewal in flight; every later one fails on lock_timeout.
            lock.execute("LOCK TABLE cache_leases IN EXCLUSIVE MODE")
            row = lock.execute(
                "SELECT expires_at, EXTRACT(EPOCH FROM clock_timestamp()) "
                "FROM cache_leases WHERE prefix = 'drift'"
            ).fetchone()
            assert row is not None
            expires_at, db_now = float(row[0]), float(row[1])
            # The test and the database share this host's clock.
            assert abs(db_now - time.time()) < 5
            last_served = None
            deadline = time.time() + 3 * LEASE_SECONDS
            while time.time() < deadline:
                sent = time.time()
                try:
                    stub.Get(cache_pb2.GetRequest(key="drift:k"), timeout=5)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                    break
                last_served = sent
                time.sleep(0.01)  # a pace for the reads
            else:
                raise AssertionError(f"still served {3 * LEASE_SECONDS}s after renewals stopped")
            lock.rollback()
    assert last_served is not None, "the node stopped serving before the table was locked"
    assert last_served < expires_at, (
        f"served {last_served - expires_at:.3f}s past the lease's expiry on the database's clock"
    )
