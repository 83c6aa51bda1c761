"""Nodes started together on a fresh SQLite file all serve (none dies of "database is
locked" while another is still creating the file), and a node whose first heartbeat
meets a busy database waits for it instead of exiting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.cache.storage.db import CacheDb
from services.cache.storage.tables import members
from tests.ownership.cluster import Cluster, node_env
from tests.support.polling import eventually
from tests.support.processes import start_service, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_nodes_starting_together_on_a_fresh_file_all_serve(tmp_path: Path) -> None:
    # Three rounds of three processes started at once, each on a fresh file: the race
    # of tests/cache/test_sqlite_start.py as it happens (its window is milliseconds, so
    # this one is for `make test-stress`; that one fails deterministically).
    for round_ in range(3):
        workdir = tmp_path / f"round{round_}"
        cluster = Cluster(f"sqlite:///{workdir / 'shared.db'}", workdir)
        try:
            await cluster.start("node-a", "node-b", "node-c")
            await cluster.wait_members(("node-a", "node-b", "node-c"))
        finally:
            await cluster.close()
        for node in cluster.nodes.values():
            assert "database is locked" not in node.log(), node.log()


async def test_a_node_whose_first_heartbeat_meets_a_locked_row_starts_when_it_is_freed(
    pg_url: str, tmp_path: Path
) -> None:
    # The first heartbeat prunes long-dead member rows; another session holds one's lock
    # (as a busy node's slow transaction would) past the heartbeat's lock wait (lease / 4).
    db = CacheDb(pg_url)
    db.create_schema()
    try:
        with db.transaction() as conn:
            conn.execute(
                members.insert().values(
                    token="long-gone",
                    node_id="old",
                    address="old:1",
                    pid=1,
                    host="",
                    started_at=0.0,
                    heartbeat_at=0.0,
                    expires_at=1.0,
                )
            )
        cluster = Cluster(pg_url, tmp_path)
        try:
            with db.transaction() as conn:
                conn.exec_driver_sql(
                    "SELECT 1 FROM cache_members WHERE token = 'long-gone' FOR UPDATE"
                )
                node = start_service(
                    "cache", node_env(pg_url, "node-a"), tmp_path, wait=False, label="node-a"
                )
                cluster.nodes["node-a"] = node
                # Held for three lock waits: the first heartbeat fails at least twice.
                await eventually(
                    lambda: (
                        node.log().count("first lease heartbeat failed") >= 2
                        or node.popen.poll() is not None
                    ),
                    60,
                    "the first heartbeat never met the lock",
                )
            await asyncio.to_thread(wait_ready, node, 60.0)
            assert node.popen.poll() is None, node.log()
            await cluster.wait_members(("node-a",))
        finally:
            await cluster.close()
    finally:
        db.dispose()
