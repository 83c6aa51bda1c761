"""Render deploy/prometheus/rules.yml as the Prometheus Operator's PrometheusRule.

Run `python -m tests.deploy.prometheusrule` after editing rules.yml; a test
fails while the committed PrometheusRule differs from the rules file.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
PROMETHEUS_RULE = (
    REPO / "deploy" / "k8s" / "components" / "prometheus-operator" / "prometheusrule.yaml"
)

_HEADER = """\
# GENERATED from deploy/prometheus/rules.yml by `python -m tests.deploy.prometheusrule`;
# edit the rules file, not this one (a test fails while the two differ).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: marketcache
  labels:
    app.kubernetes.io/name: marketcache
spec:
"""


def render(rules_text: str) -> str:
    """The PrometheusRule whose spec.groups is the `groups:` of a rules file, comments kept."""
    lines = rules_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = [f"  {line}" if line else "" for line in lines[start:]]
    return _HEADER + "\n".join(body) + "\n"


def main() -> None:
    """Rewrite the committed PrometheusRule from rules.yml."""
    PROMETHEUS_RULE.write_text(render(RULES.read_text()))
    print(f"wrote {PROMETHEUS_RULE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
