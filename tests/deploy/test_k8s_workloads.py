"""Structural rules every workload must keep: probes, resources, hardening, ports, env, image."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.common.config import parse_address
from tests.deploy.manifests import (
    REPO,
    Doc,
    config_env,
    container_env,
    containers,
    named,
    of_kind,
    pod_spec,
    port_numbers,
    process_of,
    selector_matches,
    workloads,
)

# Each process's listen variables, and the container port names they must match.
LISTEN_VARS = {
    "cache": {"grpc": "CACHE_LISTEN", "metrics": "CACHE_METRICS_LISTEN"},
    "market_data": {"grpc": "MARKET_DATA_LISTEN", "metrics": "MARKET_DATA_METRICS_LISTEN"},
    "sector": {"grpc": "SECTOR_LISTEN", "metrics": "SECTOR_METRICS_LISTEN"},
    "gateway": {"http": "GATEWAY_LISTEN"},
}
# Variables a manifest sets only to build others through $(NAME) expansion.
EXPANSION_ONLY = {"POD_NAME", "POD_NAMESPACE", "CACHE_DB_PASSWORD", "CACHE_DB_PASSWORD_2"}
SECRET = "marketcache-secrets"
# The password of a CloudNativePG cluster's `app` role, in the Secret its operator
# generates (<cluster>-app): the one secret that does not come from SECRET.
DB_PASSWORD = re.compile(r"marketcache-db(-\d+)?-app")
DATA_DIR = "/var/lib/marketcache"
_ENV_LITERAL = re.compile(r"\"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\"")


def test_every_container_has_probes_and_resources(docs: list[Doc]) -> None:
    for workload, container in containers(docs):
        where = f"{workload['metadata']['name']}/{container['name']}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in container, f"{where} has no {probe}"
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind}"


def test_every_pod_and_container_is_hardened(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, name
        assert pod_context["runAsUser"] == 10001, f"{name}: the image's user is 10001"
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
    for workload, container in containers(docs):
        where = f"{workload['metadata']['name']}/{container['name']}"
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["capabilities"] == {"drop": ["ALL"]}, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert not context.get("privileged", False), where


def test_grpc_processes_use_native_grpc_probes(docs: list[Doc]) -> None:
    for workload, container in containers(docs):
        ports = port_numbers(container)
        where = f"{workload['metadata']['name']}/{container['name']}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if process_of(container) == "gateway":
                action = container[probe]["httpGet"]
                expected = "/readyz" if probe == "readinessProbe" else "/healthz"
                assert action == {"path": expected, "port": "http"}, f"{where} {probe}"
            else:
                assert container[probe]["grpc"] == {"port": ports["grpc"]}, f"{where} {probe}"


def test_ports_match_the_listen_variables(docs: list[Doc]) -> None:
    env = config_env(docs)
    for workload, container in containers(docs):
        expected = LISTEN_VARS[process_of(container)]
        ports = port_numbers(container)
        assert set(ports) == set(expected), f"{container['name']} ports {ports}"
        for port_name, variable in expected.items():
            value = container_env(container).get(variable, {}).get("value") or env[variable]
            host, port = parse_address(value, variable)
            assert host == "0.0.0.0", f"{variable}={value}: a pod must listen on every interface"
            assert port == ports[port_name], f"{variable}={value} but port {port_name} is {port}"
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        scraped = ports.get("metrics", ports.get("http"))
        assert annotations["prometheus.io/port"] == str(scraped), workload["metadata"]["name"]


def test_service_addresses_point_at_services(docs: list[Doc]) -> None:
    env = config_env(docs)
    for variable, service_name in (
        ("CACHE_ADDR", "cache"),
        ("MARKET_DATA_ADDR", "market-data"),
        ("SECTOR_ADDR", "sector"),
    ):
        host, port = parse_address(env[variable], variable)
        service = named(docs, "Service", host)
        assert host == service_name
        grpc_ports = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
        assert [p["port"] for p in grpc_ports] == [port], f"{variable}={env[variable]}"


def test_selectors_match_labels(docs: list[Doc]) -> None:
    templates = {
        w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"] for w in workloads(docs)
    }
    for workload in workloads(docs):
        labels = templates[workload["metadata"]["name"]]
        assert selector_matches(workload["spec"]["selector"], labels), workload["metadata"]["name"]
    for service in of_kind(docs, "Service"):
        selected = [
            name
            for name, labels in templates.items()
            if selector_matches({"matchLabels": service["spec"]["selector"]}, labels)
        ]
        assert len(selected) == 1, f"Service {service['metadata']['name']} selects {selected}"
        workload = named(docs, _kind_of(docs, selected[0]), selected[0])
        container_ports = {
            name for c in pod_spec(workload)["containers"] for name in port_numbers(c)
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, f"{service['metadata']['name']} {port}"
    for budget in of_kind(docs, "PodDisruptionBudget"):
        selected = [
            n for n, lab in templates.items() if selector_matches(budget["spec"]["selector"], lab)
        ]
        assert selected == ["cache"], f"PodDisruptionBudget selects {selected}"
    statefulset = named(docs, "StatefulSet", "cache")
    assert named(docs, "Service", statefulset["spec"]["serviceName"])["spec"]["clusterIP"] == "None"


def _kind_of(docs: list[Doc], name: str) -> str:
    return str(next(w["kind"] for w in workloads(docs) if w["metadata"]["name"] == name))


def test_one_image_everywhere(docs: list[Doc]) -> None:
    images = {container["image"] for _, container in containers(docs)}
    assert len(images) == 1, images
    image = images.pop()
    assert re.fullmatch(r"marketcache:\d+\.\d+\.\d+", image), image


def test_termination_outlasts_the_drain(docs: list[Doc]) -> None:
    drain = float(config_env(docs)["GRPC_DRAIN_SECONDS"])
    for workload, container in containers(docs):
        grace = pod_spec(workload)["terminationGracePeriodSeconds"]
        pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        # The kubelet's clock runs from the preStop hook; SIGTERM comes after it.
        assert grace > pause + drain, f"{container['name']}: {grace}s <= {pause}s + {drain}s"


def _names_read_by(package: str) -> set[str]:
    root = REPO / "services" / package
    return {
        match
        for path in root.rglob("*.py")
        for match in _ENV_LITERAL.findall(Path(path).read_text())
    }


def test_every_variable_set_is_one_the_code_reads(docs: list[Doc]) -> None:
    # What every process shares, and the client library the services use.
    common = _names_read_by("common") | _names_read_by("client")
    processes = ("cache", "market_data", "sector", "gateway")
    missing = [p for p in processes if not (REPO / "services" / p / "__main__.py").exists()]
    if missing:
        pytest.skip(f"services not present yet: {missing}")
    read = {process: _names_read_by(process) | common for process in processes}
    unread = set(config_env(docs)) - set().union(*read.values())
    assert not unread, f"the ConfigMap sets variables no process reads: {sorted(unread)}"
    for _, container in containers(docs):
        process = process_of(container)
        env = container_env(container)
        unread = set(env) - read[process] - EXPANSION_ONLY
        assert not unread, f"{process} does not read {sorted(unread)}"
        values = " ".join(str(entry.get("value", "")) for entry in env.values())
        for helper in EXPANSION_ONLY & set(env):
            assert f"$({helper})" in values, f"{process}: {helper} is set but never expanded"


def test_variable_references_resolve_in_order(docs: list[Doc]) -> None:
    for _, container in containers(docs):
        defined: set[str] = set()
        for entry in container.get("env", []):
            for reference in re.findall(r"\$\(([A-Z_0-9]+)\)", entry.get("value", "")):
                assert reference in defined, f"{entry['name']} uses $({reference}) before it is set"
            defined.add(entry["name"])


def test_secrets_come_from_one_secret(docs: list[Doc]) -> None:
    required = {"admin-token", "cache-db-url"}
    optional = {"fmp-api-key", "alphavantage-api-key", "newsapi-key"}
    for _, container in containers(docs):
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                continue
            if DB_PASSWORD.fullmatch(ref["name"]):
                assert ref["key"] == "password", entry["name"]
                continue
            assert ref["name"] == SECRET, entry["name"]
            assert ref["key"] in required | optional, ref["key"]
            assert ref.get("optional", False) is (ref["key"] in optional), entry["name"]
    # No secret value is ever written into a manifest.
    secret_names = {"ADMIN_TOKEN", "FMP_API_KEY", "ALPHAVANTAGE_API_KEY", "NEWSAPI_KEY"}
    assert not secret_names & set(config_env(docs))
    for _, container in containers(docs):
        for name in secret_names & set(container_env(container)):
            assert "value" not in container_env(container)[name], name


def test_the_cache_keeps_its_state_on_the_data_volume(docs: list[Doc]) -> None:
    statefulset = named(docs, "StatefulSet", "cache")
    (container,) = pod_spec(statefulset)["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == DATA_DIR
    assert set(mounts.values()) == {DATA_DIR, "/tmp"}, "the root filesystem is read-only"
    env = container_env(container)
    assert env["CACHE_NODE_ID"]["value"] == "$(POD_NAME)"
    assert env["CACHE_ADVERTISE_ADDR"]["value"] == (
        "$(POD_NAME).cache-headless.$(POD_NAMESPACE).svc:50051"
    )
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
