"""The metric names that deploy/ (rules and dashboard) queries, and who exports them."""

from __future__ import annotations

import re

import yaml

from tests.deploy.dashboard import load, queries
from tests.deploy.manifests import DEPLOY

# Which package exports the metrics of each name prefix.
OWNERS = {
    "grpc_server_": "common",
    # The client library's near cache, wherever the library lives under services/.
    "cache_near_": ".",
    "cache_": "cache",
    "market_": "market_data",
    "sector_": "sector",
    "gateway_": "gateway",
}
# A metric name in PromQL: not part of a recording rule's name (which has colons).
_METRIC = re.compile(r"(?<![:\w])((?:grpc_server|cache|market|sector|gateway)_[a-z0-9_]+)(?![:\w])")
_SERIES_SUFFIXES = ("_bucket", "_count", "_sum")


def referenced_metrics() -> set[str]:
    """Metric names used by rules.yml and by the dashboard."""
    groups = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
    exprs = [rule["expr"] for group in groups for rule in group["rules"]]
    exprs += [expr for _, expr in queries(load())]
    return {name for expr in exprs for name in _METRIC.findall(expr)}


def declared_name(series: str) -> str:
    """The name a client library declares for a series (histograms add suffixes)."""
    for suffix in _SERIES_SUFFIXES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def owner(name: str) -> str:
    """The services/ package that exports a metric."""
    return next(package for prefix, package in OWNERS.items() if name.startswith(prefix))
