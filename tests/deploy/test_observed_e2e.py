"""End to end: a real Prometheus scrapes the four real processes with the committed config.

The PromQL hit ratio agrees with the cache's own /api/v1/cache/metrics, every
target is up, the committed rules load and evaluate, every dashboard query runs,
and every metric the rules and dashboard name is one the processes export.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from tests.deploy.dashboard import executable, load, queries
from tests.deploy.metric_names import declared_name, referenced_metrics
from tests.deploy.prometheus_server import PrometheusApi, local_config, running_prometheus
from tests.support.polling import eventually_blocking
from tests.support.processes import ServiceProcess, running, running_http

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TOKEN = "deploy-e2e-token"
LOOPBACK = "127.0.0.1:0"
# (prefix, keys written, keys read that exist, keys read that do not)
TRAFFIC = (("e2ea", 4, 6, 2), ("e2eb", 2, 1, 3))


@dataclass
class Observed:
    """The running system and the Prometheus that scrapes it."""

    gateway: str
    processes: dict[str, ServiceProcess]
    prometheus: PrometheusApi


def rest(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def _traffic(gateway: str) -> None:
    for prefix, written, hits, misses in TRAFFIC:
        for i in range(written):
            rest(f"{gateway}/api/v1/cache/keys/{prefix}:k{i}", "PUT", {"value": {"i": i}})
        for i in range(hits):
            assert rest(f"{gateway}/api/v1/cache/keys/{prefix}:k{i % written}")["found"] is True
        for i in range(misses):
            assert not rest(f"{gateway}/api/v1/cache/keys/{prefix}:absent{i}").get("found")
    # Through sector and market_data too, so their metrics move.
    rest(f"{gateway}/api/v1/sectors/XLK")
    rest(f"{gateway}/api/v1/market/quotes/AAPL")


NEAR_CACHE_BYTES = str(1 << 20)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    workdir = tmp_path_factory.mktemp("observed")
    with ExitStack() as stack:
        cache = stack.enter_context(
            running(
                "cache",
                {
                    "CACHE_LISTEN": LOOPBACK,
                    "CACHE_METRICS_LISTEN": LOOPBACK,
                    "CACHE_DB_URL": f"sqlite:///{workdir / 'cache.db'}",
                    "ADMIN_TOKEN": TOKEN,
                },
                workdir,
            )
        )
        market = stack.enter_context(
            running(
                "market_data",
                {
                    "MARKET_DATA_LISTEN": LOOPBACK,
                    "MARKET_DATA_METRICS_LISTEN": LOOPBACK,
                    "MARKET_PROVIDER": "synthetic",
                    "CACHE_ADDR": cache.grpc_address,
                    # As deployed (make run, deploy/k8s): the near cache's series exist.
                    "CACHE_NEAR_CACHE_BYTES": NEAR_CACHE_BYTES,
                },
                workdir,
            )
        )
        sector = stack.enter_context(
            running(
                "sector",
                {
                    "SECTOR_LISTEN": LOOPBACK,
                    "SECTOR_METRICS_LISTEN": LOOPBACK,
                    "CACHE_ADDR": cache.grpc_address,
                    "MARKET_DATA_ADDR": market.grpc_address,
                    "ADMIN_TOKEN": TOKEN,
                    "CACHE_NEAR_CACHE_BYTES": NEAR_CACHE_BYTES,
                },
                workdir,
            )
        )
        gateway = stack.enter_context(
            running_http(
                "gateway",
                {
                    "GATEWAY_LISTEN": LOOPBACK,
                    "CACHE_ADDR": cache.grpc_address,
                    "MARKET_DATA_ADDR": market.grpc_address,
                    "SECTOR_ADDR": sector.grpc_address,
                    "ADMIN_TOKEN": TOKEN,
                },
                workdir,
            )
        )
        targets = {
            "cache": [f"127.0.0.1:{cache.metrics_port}"],
            "market-data": [f"127.0.0.1:{market.metrics_port}"],
            "sector": [f"127.0.0.1:{sector.metrics_port}"],
            "gateway": [gateway.http_address],
        }
        config = local_config(targets)
        api = stack.enter_context(running_prometheus(config, workdir / "prometheus"))
        eventually_blocking(lambda: _all_up(api), 30, "every target up")
        # Two rounds, the second after Prometheus has seen the first: rate()
        # needs an increase between two scrapes of a series.
        _traffic(gateway.http_url)
        eventually_blocking(lambda: _has_prefixes(api), 30, "the traffic's prefixes to be scraped")
        _traffic(gateway.http_url)
        yield Observed(
            gateway.http_url,
            {"cache": cache, "market_data": market, "sector": sector, "gateway": gateway},
            api,
        )


def _all_up(api: PrometheusApi) -> dict[str, str] | None:
    active = api.get("/api/v1/targets")["activeTargets"]
    health = {t["labels"]["job"]: t["health"] for t in active}
    return health if health and set(health.values()) == {"up"} else None


def _has_prefixes(api: PrometheusApi) -> bool:
    seen = {s["metric"]["prefix"] for s in api.query("cache_misses_total")}
    return {prefix for prefix, *_ in TRAFFIC} <= seen


def test_every_target_is_scraped(observed: Observed) -> None:
    health = eventually_blocking(lambda: _all_up(observed.prometheus), 30, "every target up")
    assert set(health) == {"cache", "market-data", "sector", "gateway"}


def _counts(api: PrometheusApi, by: str = "") -> dict[str, tuple[float, float]]:
    grouping = f" by ({by})" if by else ""
    found: dict[str, list[float]] = {}
    for metric, index in (("cache_hits_total", 0), ("cache_misses_total", 1)):
        for sample in api.query(f"sum{grouping} ({metric})"):
            key = sample["metric"].get(by, "") if by else ""
            found.setdefault(key, [0.0, 0.0])[index] = float(sample["value"][1])
    return {key: (hits, misses) for key, (hits, misses) in found.items()}


def test_promql_hit_ratio_agrees_with_the_cache_metrics_api(observed: Observed) -> None:
    api = observed.prometheus

    def settled() -> dict[str, Any] | None:
        # The counters stop moving once the traffic is over; wait until the
        # last scrape has seen their final values.
        reported = rest(f"{observed.gateway}/api/v1/cache/metrics")
        hits, misses = int(reported["hits"]), int(reported["misses"])
        scraped = _counts(api).get("")
        return reported if scraped == (hits, misses) and hits + misses > 0 else None

    reported = eventually_blocking(settled, 30, "Prometheus to scrape the final cache counters")
    ratio = api.scalar("sum(cache_hits_total) / (sum(cache_hits_total) + sum(cache_misses_total))")
    assert ratio == pytest.approx(float(reported["hitRate"]), abs=1e-3)
    # Per prefix too, for the prefixes the traffic used.
    per_prefix = _counts(api, "prefix")
    reported_prefixes = {p["prefix"]: p for p in reported["metrics"]["prefixes"]}
    for prefix, _, hits, misses in TRAFFIC:
        assert per_prefix[prefix] == (2 * hits, 2 * misses), "two rounds of traffic"
        expected = float(reported_prefixes[prefix]["hitRate"])
        assert hits / (hits + misses) == pytest.approx(expected, abs=1e-3)


def test_the_committed_rules_load_and_record(observed: Observed) -> None:
    groups = observed.prometheus.get("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {r["name"] for r in rules if r["type"] == "alerting"} >= {
        "CacheHitRateLow",
        "GrpcErrorRatioHigh",
        "UpstreamCircuitOpen",
        "CacheLeaseTakeoversFlapping",
        "CacheUnavailable",
    }
    for rule in rules:
        assert rule["health"] != "err", f"{rule['name']}: {rule.get('lastError')}"

    def recorded() -> dict[str, float] | None:
        samples = observed.prometheus.query("prefix:cache_hit_ratio:rate5m")
        ratios = {s["metric"]["prefix"]: float(s["value"][1]) for s in samples}
        return ratios if {p for p, *_ in TRAFFIC} <= set(ratios) else None

    ratios = eventually_blocking(recorded, 30, "the per-prefix hit ratio to be recorded")
    for prefix, _, hits, misses in TRAFFIC:
        # rate() extrapolates hits and misses alike (same scrapes), so the
        # recorded ratio is the traffic's.
        assert ratios[prefix] == pytest.approx(hits / (hits + misses), abs=0.02), prefix
    up = observed.prometheus.query('ALERTS{alertname="CacheUnavailable"}')
    assert up == [], "the cache is up: CacheUnavailable must not be pending"


def test_every_dashboard_query_runs(observed: Observed) -> None:
    dashboard = load()
    answered = 0
    for panel, expr in queries(dashboard):
        result = observed.prometheus.query(executable(expr, dashboard))
        answered += bool(result)
        assert isinstance(result, list), panel["title"]
    assert answered >= 10, "most panels show data while traffic runs"


def _exported_names(observed: Observed) -> set[str]:
    names: set[str] = set()
    for proc in observed.processes.values():
        port = proc.metrics_port or int(proc.http_address.rpartition(":")[2])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
        names |= set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    return names


def test_every_queried_metric_is_exported(observed: Observed) -> None:
    exported = _exported_names(observed)
    # prometheus_client names a counter's family without its _total suffix.
    exported |= {f"{name}_total" for name in exported}
    missing = {series for series in referenced_metrics() if declared_name(series) not in exported}
    assert not missing, f"queried by deploy/ but exported by no process: {sorted(missing)}"
