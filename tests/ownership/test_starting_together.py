"""Nodes started together on a fresh SQLite file all serve (none dies of "database is
locked" while another is still creating the file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ownership.cluster import Cluster

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
