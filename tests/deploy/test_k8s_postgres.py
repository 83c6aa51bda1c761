"""The CloudNativePG clusters of the ha and shards overlays, checked structurally (their
CRD has no offline schema), and the cache's URLs pointing at their read-write services."""

from __future__ import annotations

import re

from tests.deploy.manifests import Doc, container_env, named, of_kind, pod_spec

CNPG = "postgresql.cnpg.io/v1"


def _clusters(docs: list[Doc]) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, "Cluster") if d["apiVersion"] == CNPG}


def _cache_env(docs: list[Doc]) -> dict[str, Doc]:
    return container_env(pod_spec(named(docs, "StatefulSet", "cache"))["containers"][0])


def _check_synchronous(cluster: Doc) -> None:
    spec = cluster["spec"]
    name = cluster["metadata"]["name"]
    assert spec["instances"] >= 2, f"{name}: a standby is needed to fail over"
    assert spec["postgresql"]["synchronous"] == {
        "method": "any",
        "number": 1,
        # Without it, CloudNativePG drops to asynchronous when no standby answers,
        # and a failover may then lose acknowledged writes.
        "dataDurability": "required",
    }, name
    assert spec["instances"] > spec["postgresql"]["synchronous"]["number"], name


def _services_of(url_list: str) -> list[str]:
    """The hosts of the (comma-separated) URLs; each must be a cluster's -rw service."""
    return [re.sub(r"^.*@([^:/]+).*$", r"\1", u) for u in url_list.split(",")]


def test_ha_runs_on_a_synchronous_cloudnativepg_cluster(
    rendered_overlays: dict[str, list[Doc]],
) -> None:
    docs = rendered_overlays["ha"]
    clusters = _clusters(docs)
    assert set(clusters) == {"marketcache-db"}
    _check_synchronous(clusters["marketcache-db"])
    env = _cache_env(docs)
    assert _services_of(env["CACHE_DB_URL"]["value"]) == ["marketcache-db-rw"]
    assert env["CACHE_REQUIRE_SYNC_REPLICATION"]["value"] == "true"
    assert "CACHE_DB_URLS" not in env


def test_shards_spread_prefixes_over_two_synchronous_clusters(
    rendered_overlays: dict[str, list[Doc]],
) -> None:
    docs = rendered_overlays["shards"]
    clusters = _clusters(docs)
    assert set(clusters) == {"marketcache-db", "marketcache-db-2"}
    for cluster in clusters.values():
        _check_synchronous(cluster)
    env = _cache_env(docs)
    assert "CACHE_DB_URL" not in env, "CACHE_DB_URL and CACHE_DB_URLS are refused together"
    urls = env["CACHE_DB_URLS"]["value"]
    assert _services_of(urls) == ["marketcache-db-rw", "marketcache-db-2-rw"]
    # $(VAR) expands only variables defined earlier in the list.
    names = list(env)
    for var in re.findall(r"\$\((\w+)\)", urls):
        assert names.index(var) < names.index("CACHE_DB_URLS"), var
        assert env[var]["valueFrom"]["secretKeyRef"]["key"] == "password"


def test_the_database_pods_accept_the_caches(rendered_overlays: dict[str, list[Doc]]) -> None:
    # default-deny-ingress selects every pod of the namespace, the database's too.
    policy = named(rendered_overlays["ha"], "NetworkPolicy", "database")
    assert policy["spec"]["podSelector"]["matchExpressions"] == [
        {"key": "cnpg.io/cluster", "operator": "Exists"}
    ]
    sources = [s for rule in policy["spec"]["ingress"] for s in rule["from"]]
    caches = {"app.kubernetes.io/name": "marketcache", "app.kubernetes.io/component": "cache"}
    assert {"podSelector": {"matchLabels": caches}} in sources
