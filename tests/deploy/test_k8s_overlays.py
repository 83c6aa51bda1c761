"""What distinguishes the overlays: dev is one cache on SQLite, HA is three on PostgreSQL."""

from __future__ import annotations

from tests.deploy.manifests import Doc, container_env, named, of_kind, pod_spec, workloads

CACHE_LABELS = {"app.kubernetes.io/name": "marketcache", "app.kubernetes.io/component": "cache"}


def _cache_container(docs: list[Doc]) -> Doc:
    container: Doc = pod_spec(named(docs, "StatefulSet", "cache"))["containers"][0]
    return container


def test_every_object_lives_in_the_overlay_namespace(
    rendered_overlays: dict[str, list[Doc]],
) -> None:
    for overlay, namespace in (
        ("dev", "marketcache-dev"),
        ("ha", "marketcache"),
        ("shards", "marketcache"),
    ):
        docs = rendered_overlays[overlay]
        (ns,) = of_kind(docs, "Namespace")
        assert ns["metadata"]["name"] == namespace
        # Every pod meets the restricted Pod Security Standard, so enforce it.
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        for doc in docs:
            if doc["kind"] != "Namespace":
                assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]


def test_dev_runs_one_cache_on_sqlite_on_a_claim(rendered_overlays: dict[str, list[Doc]]) -> None:
    docs = rendered_overlays["dev"]
    statefulset = named(docs, "StatefulSet", "cache")
    assert statefulset["spec"]["replicas"] == 1, "SQLite on a ReadWriteOnce claim: one writer"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    url = container_env(_cache_container(docs))["CACHE_DB_URL"]["value"]
    assert url == "sqlite:////var/lib/marketcache/cache.db"
    assert all(w["spec"]["replicas"] == 1 for w in workloads(docs))


def test_ha_runs_three_caches_on_postgresql(rendered_overlays: dict[str, list[Doc]]) -> None:
    docs = rendered_overlays["ha"]
    statefulset = named(docs, "StatefulSet", "cache")
    assert statefulset["spec"]["replicas"] == 3
    assert "volumeClaimTemplates" not in statefulset["spec"], "state lives in PostgreSQL"
    volumes = {v["name"]: v for v in pod_spec(statefulset)["volumes"]}
    assert "emptyDir" in volumes["data"]
    # The URL names the CloudNativePG cluster's read-write service; its password
    # comes from the Secret the operator generates, never from a literal
    # (test_k8s_postgres.py checks the cluster itself).
    env = container_env(_cache_container(docs))
    assert env["CACHE_DB_URL"]["value"] == (
        "postgresql+psycopg://app:$(CACHE_DB_PASSWORD)@marketcache-db-rw:5432/app"
    )
    assert env["CACHE_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "marketcache-db-app",
        "key": "password",
    }
    for deployment in of_kind(docs, "Deployment"):
        assert deployment["spec"]["replicas"] >= 2, deployment["metadata"]["name"]
        (spread,) = pod_spec(deployment)["topologySpreadConstraints"]
        assert spread["matchLabelKeys"] == ["app.kubernetes.io/component"]


def test_ha_spreads_the_caches_over_nodes(rendered_overlays: dict[str, list[Doc]]) -> None:
    spec = pod_spec(named(rendered_overlays["ha"], "StatefulSet", "cache"))
    (term,) = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"] == {"matchLabels": CACHE_LABELS}
    assert "affinity" not in pod_spec(named(rendered_overlays["dev"], "StatefulSet", "cache"))


def test_the_disruption_budget_keeps_a_quorum_of_caches(
    rendered_overlays: dict[str, list[Doc]],
) -> None:
    for overlay in ("dev", "ha"):
        docs = rendered_overlays[overlay]
        budget = named(docs, "PodDisruptionBudget", "cache")
        replicas = named(docs, "StatefulSet", "cache")["spec"]["replicas"]
        assert budget["spec"]["selector"] == {"matchLabels": CACHE_LABELS}
        unavailable = budget["spec"]["maxUnavailable"]
        # A drain may always proceed, and with several caches most of them stay.
        assert unavailable >= 1
        assert replicas == 1 or replicas - unavailable > replicas // 2, overlay
