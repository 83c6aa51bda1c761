"""Render the kustomize overlays and look things up in the rendered manifests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "ha", "shards")
WORKLOAD_KINDS = ("Deployment", "StatefulSet")

Doc = dict[str, Any]


def require_tool(name: str, hint: str) -> str:
    """The path of a command-line tool; skip without it (fail under CI, where it must exist)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    message = f"{name} is not installed: {hint}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def render(overlay: str) -> list[Doc]:
    """`kubectl kustomize deploy/k8s/overlays/<overlay>` parsed into documents."""
    kubectl = require_tool("kubectl", "kubectl ships kustomize; install kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    """Every document of one kind."""
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    """The one document of `kind` called `name`."""
    matches = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def workloads(docs: list[Doc]) -> list[Doc]:
    """The Deployments and StatefulSets."""
    return [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: Doc) -> Doc:
    """The pod template's spec of a workload."""
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def containers(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, container) for every container of every workload, init containers too."""
    for workload in workloads(docs):
        spec = pod_spec(workload)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield workload, container


def process_of(container: Doc) -> str:
    """The services.<name> module a container runs (`python -m services.<name>`)."""
    command = [*container.get("command", []), *container.get("args", [])]
    assert command[:2] == ["python", "-m"], f"{container['name']}: unexpected command {command}"
    module = command[2]
    assert module.startswith("services."), f"{container['name']}: runs {module}"
    return str(module.removeprefix("services."))


def config_env(docs: list[Doc]) -> dict[str, str]:
    """The data of the shared ConfigMap (its generated name carries a hash suffix)."""
    maps = [
        doc
        for doc in of_kind(docs, "ConfigMap")
        if doc["metadata"]["name"].startswith("marketcache-config")
    ]
    assert len(maps) == 1, f"expected one marketcache-config ConfigMap, found {len(maps)}"
    data: dict[str, str] = maps[0]["data"]
    return data


def container_env(container: Doc) -> dict[str, Doc]:
    """A container's explicit env entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def port_numbers(container: Doc) -> dict[str, int]:
    """A container's named ports: name -> containerPort."""
    return {port["name"]: int(port["containerPort"]) for port in container.get("ports", [])}


def selector_matches(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects these labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
