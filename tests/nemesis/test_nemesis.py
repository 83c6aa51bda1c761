"""The bounded nemesis: every fault class once against three caches, on SQLite and on
PostgreSQL, every history checked (what `make nemesis` does for longer). The class
that needs a node in a network namespace runs in a test of its own, one round per
database, so the shared one keeps its time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.nemesis import netns
from harness.nemesis.checks import RoundResult
from harness.nemesis.faults import fault_classes
from harness.nemesis.kernel_cut import NAME as NETNS_PARTITION
from harness.nemesis.runner import Settings, run
from tests.support.postgres import PG_ADMIN_DSN, require_postgres

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.slow]

DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# One round of the kernel cut, kept short: the cut lasts until its checks are done
# anyway (a takeover on PostgreSQL: up to lease + 3 s), whatever the hold drawn.
SHORT = Settings(hold_leases=(1.0, 1.5), lead_in=0.5, settle_after=2.0)


def _judge(results: list[RoundResult]) -> None:
    for r in results:
        assert r.acknowledged > 0, f"{r.fault}: no write was acknowledged"
        assert (r.lost, r.stale, r.problems) == (0, 0, []), f"{r.fault} on {r.victim}"
        if r.fault == "full-disk":
            assert r.refused > 0, "the full disk refused no write of the workload"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_every_fault_class_once_loses_nothing_and_serves_nothing_stale(
    dialect: str, tmp_path: Path
) -> None:
    if dialect == "postgresql":
        require_postgres()
    shared = [f.name for f in fault_classes(dialect) if not f.namespace]
    results = await run(
        dialect, tmp_path, each_once=True, seed=21, pg_admin_dsn=PG_ADMIN_DSN, faults=shared
    )
    assert sorted(r.fault for r in results) == sorted(shared)
    _judge(results)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_node_cut_off_by_the_kernel_loses_nothing_and_leaves_no_namespace(
    dialect: str, tmp_path: Path
) -> None:
    why = netns.available()
    if why is not None:
        if os.environ.get("CI", "").lower() == "true" and os.geteuid() == 0:
            pytest.fail(f"{NETNS_PARTITION} cannot run as root under CI: {why}")
        pytest.skip(why)
    if dialect == "postgresql":
        require_postgres()
    results = await run(
        dialect,
        tmp_path,
        each_once=True,
        seed=21,
        settings=SHORT,
        pg_admin_dsn=PG_ADMIN_DSN,
        faults=[NETNS_PARTITION],
    )
    assert [r.fault for r in results] == [NETNS_PARTITION]
    _judge(results)
    assert netns.labs_of(os.getpid()) == [], "namespaces left behind"
