"""A small evaluator of Kubernetes NetworkPolicy ingress rules, to test who may reach whom."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.deploy.manifests import Doc, selector_matches


@dataclass(frozen=True)
class Peer:
    """A source of traffic: a pod in a namespace, or (namespace "") outside the cluster."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        # Kubernetes labels every namespace with its own name.
        return {"kubernetes.io/metadata.name": self.namespace} if self.namespace else {}


@dataclass(frozen=True)
class Target:
    """A destination pod and one of its container ports."""

    namespace: str
    labels: Mapping[str, str]
    port_name: str
    port_number: int


def ingress_allowed(policies: list[Doc], source: Peer, target: Target) -> bool:
    """Whether the policies admit TCP traffic from `source` to `target` (the API's semantics)."""
    selecting = [
        policy
        for policy in policies
        if policy["metadata"].get("namespace") == target.namespace
        and selector_matches(policy["spec"]["podSelector"], dict(target.labels))
        and "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True  # a pod no policy selects is not isolated
    return any(
        _ports_match(rule.get("ports"), target) and _sources_match(rule.get("from"), policy, source)
        for policy in selecting
        for rule in policy["spec"].get("ingress", [])
    )


def _ports_match(ports: list[Doc] | None, target: Target) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        port = entry.get("port")
        if port is None or port in (target.port_name, target.port_number):
            return True
    return False


def _sources_match(peers: list[Doc] | None, policy: Doc, source: Peer) -> bool:
    if not peers:
        return True  # no `from`: every source
    return any(_peer_matches(peer, policy, source) for peer in peers)


def _peer_matches(peer: Doc, policy: Doc, source: Peer) -> bool:
    if "ipBlock" in peer:
        return False  # this project's policies never use ipBlock; treat it as no match
    pod_selector = peer.get("podSelector")
    namespace_selector = peer.get("namespaceSelector")
    if not source.namespace:
        return False  # outside the cluster: only a rule without `from` admits it
    if namespace_selector is None:
        in_namespace = source.namespace == policy["metadata"].get("namespace")
    else:
        in_namespace = selector_matches(namespace_selector, source.namespace_labels)
    if not in_namespace:
        return False
    return pod_selector is None or selector_matches(pod_selector, dict(source.labels))
