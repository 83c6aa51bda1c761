"""Network policies admit exactly the callers; Prometheus finds every process once."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.manifests import (
    DEPLOY,
    Doc,
    named,
    of_kind,
    port_numbers,
    selector_matches,
    workloads,
)
from tests.deploy.netpol import Peer, Target, ingress_allowed
from tests.deploy.prometheusrule import PROMETHEUS_RULE, RULES, render

COMPONENTS = ("cache", "market-data", "sector", "gateway")
# Who may call whose gRPC port (docs/architecture.md, section 1, and the issue).
CALLERS = {
    "cache": {"market-data", "sector", "gateway", "cache"},
    "market-data": {"sector", "gateway"},
    "sector": {"gateway"},
}


def _pod(namespace: str, component: str) -> Peer:
    return Peer(
        namespace,
        {"app.kubernetes.io/name": "marketcache", "app.kubernetes.io/component": component},
    )


def _targets(docs: list[Doc], namespace: str) -> dict[tuple[str, str], Target]:
    found = {}
    for workload in workloads(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for port_name, number in port_numbers(container).items():
                component = labels["app.kubernetes.io/component"]
                found[(component, port_name)] = Target(namespace, labels, port_name, number)
    return found


def test_network_policies_admit_exactly_the_callers(docs: list[Doc]) -> None:
    namespace = of_kind(docs, "Namespace")[0]["metadata"]["name"]
    policies = of_kind(docs, "NetworkPolicy")
    targets = _targets(docs, namespace)
    monitoring = Peer("monitoring", {"app.kubernetes.io/name": "prometheus"})
    outside = Peer("")  # a client outside the cluster
    # Same labels as our gateway, but in another namespace: not a caller.
    impostor = _pod("default", "gateway")
    for (component, port_name), target in targets.items():
        for caller in COMPONENTS:
            allowed = ingress_allowed(policies, _pod(namespace, caller), target)
            # gRPC: only the callers; metrics: only monitoring; http: everyone.
            expected = caller in CALLERS[component] if port_name == "grpc" else port_name == "http"
            assert allowed is expected, f"{caller} -> {component}:{port_name}"
        assert ingress_allowed(policies, monitoring, target) is (port_name != "grpc"), (
            f"monitoring -> {component}:{port_name}"
        )
        for stranger in (outside, impostor):
            assert ingress_allowed(policies, stranger, target) is (port_name == "http"), (
                f"{stranger} -> {component}:{port_name}"
            )


def test_ingress_is_denied_by_default(docs: list[Doc]) -> None:
    deny = named(docs, "NetworkPolicy", "default-deny-ingress")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    namespace = deny["metadata"]["namespace"]
    stray = Target(namespace, {"app.kubernetes.io/name": "debug"}, "http", 80)
    assert not ingress_allowed(of_kind(docs, "NetworkPolicy"), _pod(namespace, "gateway"), stray)


def test_every_pod_carries_the_scrape_annotations(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        ports = {
            p
            for c in workload["spec"]["template"]["spec"]["containers"]
            for p in port_numbers(c).values()
        }
        assert int(annotations["prometheus.io/port"]) in ports


def test_the_service_monitor_scrapes_each_process_once(
    rendered_overlays: dict[str, list[Doc]],
) -> None:
    docs = rendered_overlays["ha"]
    (monitor,) = of_kind(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    endpoints = {e["port"]: e for e in spec["endpoints"]}
    assert all(e["path"] == "/metrics" for e in endpoints.values())
    scraped: dict[str, list[str]] = {}
    for service in of_kind(docs, "Service"):
        labels = service["metadata"]["labels"]
        if not selector_matches(spec["selector"], labels):
            continue
        ports = [p["name"] for p in service["spec"]["ports"] if p["name"] in endpoints]
        if ports:
            # The job label comes from this Service label; the rules select on it.
            scraped[labels[spec["jobLabel"]]] = ports
    assert scraped == {
        "cache": ["metrics"],
        "market-data": ["metrics"],
        "sector": ["metrics"],
        "gateway": ["http"],
    }
    # Scraped Services point at the containers' metrics ports.
    for service_name, port_name in (("cache", "metrics"), ("gateway", "http")):
        service = named(docs, "Service", service_name)
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == port_name]
        assert port["targetPort"] == port_name


def test_the_prometheus_rule_carries_rules_yml(rendered_overlays: dict[str, list[Doc]]) -> None:
    (rule,) = of_kind(rendered_overlays["ha"], "PrometheusRule")
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert rule["spec"]["groups"] == groups
    if PROMETHEUS_RULE.read_text() != render(RULES.read_text()):
        pytest.fail("prometheusrule.yaml is stale: run `python -m tests.deploy.prometheusrule`")
    assert (DEPLOY / "k8s" / "components" / "prometheus-operator" / "kustomization.yaml").exists()
