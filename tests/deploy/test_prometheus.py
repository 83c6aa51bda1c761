"""promtool checks the configs and rules, runs the rule unit tests, and they can fail."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import DEPLOY, REPO

PROMETHEUS = DEPLOY / "prometheus"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
RUNBOOK = REPO / "docs" / "runbook.md"
# The local run scrapes each process on its default port (docs/architecture.md, section 1).
LOCAL_TARGETS = {
    "cache": ["127.0.0.1:9101"],
    "market-data": ["127.0.0.1:9102"],
    "sector": ["127.0.0.1:9103"],
    "gateway": ["127.0.0.1:8080"],
    "prometheus": ["127.0.0.1:9090"],
}


def promtool_run(
    promtool: str, *args: str, cwd: Path = PROMETHEUS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_local_config_is_valid(promtool: str) -> None:
    result = promtool_run(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rules.yml" in result.stdout, "the local config must load the rules"


def test_local_config_scrapes_the_four_default_ports() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert jobs == LOCAL_TARGETS
    assert config["rule_files"] == ["rules.yml"]


def test_default_ports_match_the_services() -> None:
    # The same defaults the services fall back to when no *_LISTEN is set.
    for package, address in (
        ("cache", "127.0.0.1:9101"),
        ("market_data", "127.0.0.1:9102"),
        ("sector", "127.0.0.1:9103"),
        ("gateway", "127.0.0.1:8080"),
    ):
        config = REPO / "services" / package / "config.py"
        if not config.exists():
            pytest.skip(f"services/{package} not present yet")
        assert f'"{address}"' in config.read_text(), f"{package} no longer defaults to {address}"


def test_kubernetes_scrape_config_is_valid(promtool: str, tmp_path: Path) -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus-kubernetes.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    relabel = {r.get("target_label", r.get("action")): r for r in job["relabel_configs"]}
    assert relabel["job"]["source_labels"] == [
        "__meta_kubernetes_pod_label_app_kubernetes_io_component"
    ]
    assert relabel["__address__"]["source_labels"][1] == (
        "__meta_kubernetes_pod_annotation_prometheus_io_port"
    )
    # Debian's Prometheus is built without Kubernetes discovery, so promtool
    # checks everything else (relabelling, rules) with static targets instead.
    job.pop("kubernetes_sd_configs")
    job["static_configs"] = [{"targets": ["10.0.0.1:9101"]}]
    shutil.copy(PROMETHEUS / "rules.yml", tmp_path / "rules.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool_run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_are_valid(promtool: str) -> None:
    result = promtool_run(promtool, "check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    assert len(RULE_TESTS) >= 5
    result = promtool_run(promtool, "test", "rules", *(str(p) for p in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


# One mutation per alert that its unit tests must catch: a rule that never
# fires (so a test expects it to fire) and a rule that fires too easily (so a
# test expects it to stay quiet).
MUTATIONS = {
    "CacheHitRateLow": [("< 0.7", "< 0.0"), ("< 0.7", "< 0.95")],
    "GrpcErrorRatioHigh": [("> 0.05", "> 0.99"), ("> 0.1", "> 0.0001")],
    "UpstreamCircuitOpen": [("== 2", "== 3"), ("== 2", ">= 1")],
    "CacheLeaseTakeoversFlapping": [("> 0", "> 1000"), ("for: 15m", "for: 1m")],
    "CacheUnavailable": [("== 0", "== 1000"), ("sum by (job) (up", "min by (job) (up")],
    "CacheInstanceDown": [("== 0", "== 1000"), ("for: 5m", "for: 0m")],
    "CacheDbNotSynchronous": [("== 0", "== 5"), ("for: 10m", "for: 0m")],
    "CacheDbDiskFull": [("== 1", "== 2"), ("for: 1m", "for: 0m")],
    "CacheClientClockOffsetHigh": [("abs(", "("), ("> 0.5", "> 0.1")],
    "CacheClientWatchSilent": [
        ("> 0", "> 1000"),
        ("for: 10m", "for: 0m"),
        ('reason="silent"', 'reason=~".+"'),
    ],
}


def _mutate(text: str, alert: str, old: str, new: str) -> str:
    start = text.index(f"- alert: {alert}\n")
    end = text.find("- alert:", start + 1)
    end = len(text) if end == -1 else end
    block = text[start:end]
    assert old in block, f"{alert}: {old!r} not in its rule"
    return text[:start] + block.replace(old, new, 1) + text[end:]


@pytest.mark.parametrize(
    ("alert", "old", "new"),
    [(alert, old, new) for alert, pairs in MUTATIONS.items() for old, new in pairs],
)
def test_rule_unit_tests_catch_a_broken_alert(
    promtool: str, tmp_path: Path, alert: str, old: str, new: str
) -> None:
    shutil.copytree(PROMETHEUS / "tests", tmp_path / "tests")
    rules = (PROMETHEUS / "rules.yml").read_text()
    (tmp_path / "rules.yml").write_text(_mutate(rules, alert, old, new))
    # Only the test files about this alert: each promtool run costs a second or two.
    tests = [
        str(path.relative_to(tmp_path))
        for path in sorted((tmp_path / "tests").glob("*.yml"))
        if alert in path.read_text()
    ]
    assert tests, f"no rule test mentions {alert}"
    check = promtool_run(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert check.returncode == 0, f"the mutation broke the syntax: {check.stdout}"
    result = promtool_run(promtool, "test", "rules", *tests, cwd=tmp_path)
    assert result.returncode != 0, f"no rule test noticed {alert}: {old!r} -> {new!r}"
    assert alert in result.stdout + result.stderr


def test_every_alert_is_mutated_above() -> None:
    assert {rule["alert"] for rule in alerts()} == set(MUTATIONS)


def test_every_alert_is_documented() -> None:
    headings = {
        line.removeprefix("## ").strip().lower()
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in alerts():
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip()
        assert rule["labels"]["severity"] in {"warning", "critical"}
        url = annotations["runbook_url"]
        assert url == f"docs/runbook.md#{rule['alert'].lower()}", url
        assert rule["alert"].lower() in headings, f"docs/runbook.md has no ## {rule['alert']}"


def test_the_seeds_alert_is_kept() -> None:
    # The seed: `if (stats.hitRate < 0.7) { // Alert: Low cache hit rate }`.
    (rule,) = [r for r in alerts() if r["alert"] == "CacheHitRateLow"]
    assert re.search(r"job:cache_hit_ratio:rate5m < 0\.7\b", rule["expr"])
    assert rule["for"] == "10m"


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names <= firing, f"never shown firing: {names - firing}"
    assert names <= quiet, f"never shown quiet: {names - quiet}"
