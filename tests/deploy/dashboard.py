"""The Grafana dashboard's PromQL, with Grafana's variables replaced so Prometheus can run it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from tests.deploy.manifests import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "marketcache.json"
# What Grafana substitutes at query time, and a value that means the same to Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(__\w+|\w+))")


def load() -> dict[str, Any]:
    """The dashboard JSON."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """(panel, expr) for every PromQL target."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target["expr"]


def executable(expr: str, dashboard: dict[str, Any]) -> str:
    """The expression with every Grafana variable replaced by a value Prometheus accepts."""
    custom = {
        variable["name"]: variable.get("allValue") or ".*"
        for variable in dashboard["templating"]["list"]
        if variable["type"] != "datasource"
    }
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in custom:
            raise KeyError(f"undeclared variable ${name} in {expr!r}")
        return custom[name]

    return _VARIABLE.sub(substitute, expr)
