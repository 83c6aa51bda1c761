"""The bounded nemesis: every fault class once against three caches, on SQLite and on
PostgreSQL, every history checked (what `make nemesis` does for longer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.nemesis.faults import fault_classes
from harness.nemesis.runner import run
from tests.support.postgres import PG_ADMIN_DSN, require_postgres

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_every_fault_class_once_loses_nothing_and_serves_nothing_stale(
    dialect: str, tmp_path: Path
) -> None:
    if dialect == "postgresql":
        require_postgres()
    results = await run(dialect, tmp_path, each_once=True, seed=21, pg_admin_dsn=PG_ADMIN_DSN)
    assert {r.fault for r in results} == {f.name for f in fault_classes(dialect)}
    for r in results:
        assert r.acknowledged > 0, f"{r.fault}: no write was acknowledged"
        assert (r.lost, r.stale, r.problems) == (0, 0, []), f"{r.fault} on {r.victim}"
        if r.fault == "full-disk":
            assert r.refused > 0, "the full disk refused no write of the workload"
