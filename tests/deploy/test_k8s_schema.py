"""The rendered overlays are valid Kubernetes objects (offline schemas of kubernetes-validate)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tests.deploy.manifests import Doc, containers, named, of_kind, process_of

# The oldest release whose API has everything used here (the preStop `sleep`
# action is beta and on by default from 1.30), and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

# Custom resources of the Prometheus Operator and of CloudNativePG: no built-in
# schema exists, so they are checked by the structural tests in
# test_k8s_discovery.py and test_k8s_postgres.py instead.
CUSTOM_RESOURCES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("postgresql.cnpg.io/v1", "Cluster"),
}


def is_custom(doc: Doc) -> bool:
    return (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCES


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_built_in_object_validates_strictly(docs: list[Doc], version: str) -> None:
    checked = 0
    for doc in docs:
        if is_custom(doc):
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{where} is invalid for Kubernetes {version} at {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{where}: {exc.message} (a custom resource? list it in CUSTOM_RESOURCES)")
        checked += 1
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "StatefulSet", "Service", "NetworkPolicy"} <= kinds
    assert checked >= 15


def test_only_the_operator_resources_skip_schema_validation(
    rendered_overlays: dict[str, list[Doc]],
) -> None:
    skipped = {
        (doc["apiVersion"], doc["kind"])
        for docs in rendered_overlays.values()
        for doc in docs
        if is_custom(doc)
    }
    # The HA overlay carries all three; dev carries none.
    assert skipped == CUSTOM_RESOURCES
    assert not any(is_custom(doc) for doc in rendered_overlays["dev"])


def test_the_validator_rejects_a_misspelt_field(rendered_overlays: dict[str, list[Doc]]) -> None:
    # The check above must be able to fail: strict mode refuses unknown fields.
    statefulset = copy.deepcopy(named(rendered_overlays["dev"], "StatefulSet", "cache"))
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSIONS[0], strict=True)


def test_the_validator_rejects_a_wrong_type(rendered_overlays: dict[str, list[Doc]]) -> None:
    deployment = copy.deepcopy(of_kind(rendered_overlays["dev"], "Deployment")[0])
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_every_overlay_renders_all_four_processes(docs: list[Doc]) -> None:
    assert sorted(process_of(container) for _, container in containers(docs)) == [
        "cache",
        "gateway",
        "market_data",
        "sector",
    ]
