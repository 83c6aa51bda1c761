"""The Grafana dashboard: well-formed, covers what the issue lists, and every query parses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.dashboard import executable, load, panels, queries

# Topics the issue asks for, each with a metric whose panel must exist.
REQUIRED = {
    "hit rate per prefix": "cache_hits_total",
    "request rate per RPC": "grpc_server_handled_total",
    "latency per RPC": "grpc_server_handling_seconds_bucket",
    "memory": "cache_memory_bytes",
    "keys": "cache_keys",
    "commit latency": "cache_commit_seconds_bucket",
    "upstream calls": "market_upstream_requests_total",
    "breaker state": "market_breaker_state",
    "lease ownership": "cache_leases_held",
}


def test_dashboard_is_well_formed() -> None:
    dashboard = load()
    assert dashboard["uid"] == "marketcache"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel.get("description"), f"{panel['title']} has no description"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]
    (source,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["name"] == "datasource" and source["query"] == "prometheus"


def test_dashboard_covers_every_topic() -> None:
    exprs = [expr for _, expr in queries(load())]
    for topic, metric in REQUIRED.items():
        assert any(metric in expr for expr in exprs), f"no panel shows {topic} ({metric})"


def test_every_query_uses_declared_variables_only() -> None:
    dashboard = load()
    for panel, expr in queries(dashboard):
        try:
            executable(expr, dashboard)
        except KeyError as exc:
            pytest.fail(f"{panel['title']}: {exc}")


def _check_as_rules(
    promtool: str, exprs: list[str], directory: Path
) -> subprocess.CompletedProcess[str]:
    # promtool parses PromQL only inside rule files, so each query becomes a recording rule.
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = directory / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_query_parses(promtool: str, tmp_path: Path) -> None:
    dashboard = load()
    exprs = [executable(expr, dashboard) for _, expr in queries(dashboard)]
    assert len(exprs) >= 20
    result = _check_as_rules(promtool, exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_a_broken_query_would_be_caught(promtool: str, tmp_path: Path) -> None:
    result = _check_as_rules(promtool, ["sum by (prefix (rate(cache_hits_total[1m]))"], tmp_path)
    assert result.returncode != 0
