"""TLS on every gRPC link, optional mTLS, and the whole chain working with TLS everywhere.

A CA and certificates are generated per test run (cryptography); the services
read them from TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE and TLS_CLIENT_AUTH.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import from_value, to_value
from tests.gateway.stack import TOKEN, request
from tests.reliability.records import record
from tests.security.certs import Authority
from tests.security.tls_processes import running_tls, tls_channel
from tests.support.processes import REPO, running_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEALTH = health_pb2.HealthCheckRequest()


def _cache_env(workdir: Path) -> dict[str, str]:
    return {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": f"sqlite:///{workdir / 'cache.db'}",
        "ADMIN_TOKEN": TOKEN,
    }


def _refused(address: str, channel: grpc.Channel) -> grpc.StatusCode:
    """The code a health check over `channel` ends with (it must not be OK)."""
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(HEALTH, timeout=5)
        except grpc.RpcError as exc:
            return exc.code()
    raise AssertionError(f"{address} answered a client it should have refused")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority(tmp_path_factory.mktemp("pki"))


def test_plaintext_is_refused_when_tls_is_on(pki: Authority, tmp_path: Path) -> None:
    leaf = pki.issue("cache-tls")
    env = {**_cache_env(tmp_path), **pki.env(leaf, mtls=False)}
    with running_tls("cache", env, tmp_path, ca=pki.ca_pem, leaf=None) as cache:
        address = cache.grpc_address
        plaintext = _refused(address, grpc.insecure_channel(address))
        rogue = Authority(tmp_path / "rogue", "rogue CA")
        untrusted = _refused(address, tls_channel(address, rogue.ca_pem))
        with tls_channel(address, pki.ca_pem) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(HEALTH, timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert plaintext is grpc.StatusCode.UNAVAILABLE
    # The client refuses a server whose certificate its CA did not sign.
    assert untrusted is grpc.StatusCode.UNAVAILABLE


def test_mtls_refuses_clients_without_a_certificate_of_the_ca(
    pki: Authority, tmp_path: Path
) -> None:
    server, client = pki.issue("cache-mtls"), pki.issue("client")
    rogue = Authority(tmp_path / "rogue", "rogue CA")
    outsider = rogue.issue("outsider")
    env = {**_cache_env(tmp_path), **pki.env(server, mtls=True)}
    with running_tls("cache", env, tmp_path, ca=pki.ca_pem, leaf=client) as cache:
        address = cache.grpc_address
        codes = {
            "plaintext": _refused(address, grpc.insecure_channel(address)),
            "TLS without a client certificate": _refused(address, tls_channel(address, pki.ca_pem)),
            "a client certificate of another CA": _refused(
                address, tls_channel(address, pki.ca_pem, outsider)
            ),
        }
        with tls_channel(address, pki.ca_pem, client) as channel:
            stub = cache_pb2_grpc.CacheServiceStub(channel)
            stub.Set(cache_pb2.SetRequest(key="tls:one", value=to_value({"ok": True})), timeout=10)
            got = stub.Get(cache_pb2.GetRequest(key="tls:one"), timeout=10)
    assert codes == dict.fromkeys(codes, grpc.StatusCode.UNAVAILABLE)
    assert from_value(got.value) == {"ok": True}


@pytest.fixture(scope="module")
def mtls_chain(
    pki: Authority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    """cache, market_data, sector over mTLS, and the gateway calling them with its certificate."""
    work = tmp_path_factory.mktemp("mtls-chain")
    leaves = {name: pki.issue(name) for name in ("cache", "market_data", "sector", "gateway")}
    probe = pki.issue("probe")
    tls = {name: pki.env(leaf, mtls=True) for name, leaf in leaves.items()}
    with running_tls(
        "cache", {**_cache_env(work), **tls["cache"]}, work / "cache", ca=pki.ca_pem, leaf=probe
    ) as cache:
        market_env = {
            "MARKET_DATA_LISTEN": "127.0.0.1:0",
            "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
            "MARKET_PROVIDER": "synthetic",
            "MARKET_SYNTHETIC_DATE": "2025-01-15",
            "CACHE_ADDR": cache.grpc_address,
            "CACHE_CLIENT_TIMEOUT": "5",
            **tls["market_data"],
        }
        with running_tls(
            "market_data", market_env, work / "md", ca=pki.ca_pem, leaf=probe
        ) as market:
            sector_env = {
                "SECTOR_LISTEN": "127.0.0.1:0",
                "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
                "CACHE_ADDR": cache.grpc_address,
                "MARKET_DATA_ADDR": market.grpc_address,
                "ADMIN_TOKEN": TOKEN,
                "SECTOR_CACHE_TIMEOUT": "5",
                **tls["sector"],
            }
            with running_tls(
                "sector", sector_env, work / "sector", ca=pki.ca_pem, leaf=probe
            ) as sector:
                gateway_env = {
                    "GATEWAY_LISTEN": "127.0.0.1:0",
                    "CACHE_ADDR": cache.grpc_address,
                    "MARKET_DATA_ADDR": market.grpc_address,
                    "SECTOR_ADDR": sector.grpc_address,
                    "ADMIN_TOKEN": TOKEN,
                    **pki.env(leaves["gateway"], mtls=False),
                }
                with running_http("gateway", gateway_env, work / "gateway") as gateway:
                    yield {
                        "cache": cache,
                        "market": market,
                        "sector": sector,
                        "gateway": gateway,
                        "probe": probe,
                    }


def test_the_whole_chain_works_with_mtls_on_every_link(
    pki: Authority, mtls_chain: dict[str, object]
) -> None:
    gateway = mtls_chain["gateway"]
    url = gateway.http_url  # type: ignore[attr-defined]
    ready = request(url, "GET", "/readyz")
    snapshot = request(url, "GET", "/api/v1/sectors/snapshot")  # gateway→sector→market→cache
    quote = request(url, "GET", "/api/v1/market/quotes/AAPL")  # gateway→market_data→cache
    put = request(url, "PUT", "/api/v1/cache/keys/tls:rest", {"value": [1, 2]}, token=TOKEN)
    got = request(url, "GET", "/api/v1/cache/keys/tls:rest")
    cache = mtls_chain["cache"]
    with tls_channel(cache.grpc_address, pki.ca_pem, mtls_chain["probe"]) as channel:  # type: ignore[attr-defined, arg-type]
        metrics = cache_pb2_grpc.CacheServiceStub(channel).GetMetrics(
            cache_pb2.GetMetricsRequest(), timeout=10
        )
    prefixes = {p.prefix: p.keys for p in metrics.metrics.prefixes}
    plaintext = {
        name: _refused(proc.grpc_address, grpc.insecure_channel(proc.grpc_address))  # type: ignore[attr-defined]
        for name, proc in mtls_chain.items()
        if name in ("cache", "market", "sector")
    }
    links = [
        "gateway→cache",
        "gateway→market_data",
        "gateway→sector",
        "sector→market_data",
        "sector→cache",
        "market_data→cache",
    ]
    record(
        "TLS and mTLS on every gRPC link",
        tried=(
            "generated CA and certificates; plaintext and untrusted-CA clients against a TLS "
            "cache; no client certificate and another CA's certificate against mTLS; the whole "
            "chain (gateway, sector, market_data, cache) with mTLS on every link"
        ),
        cases=f"{len(links)} links over mTLS; 5 refusal cases",
        lost="nothing",
        figures={"links": links, "cache keys per prefix after the chain ran": prefixes},
    )
    assert ready.status == 200, ready.body
    assert snapshot.status == 200 and len(snapshot.body["sectors"]) == 11, snapshot.body
    assert quote.status == 200 and quote.body["quote"]["symbol"] == "AAPL", quote.body
    assert put.status == 200 and got.body["value"] == [1, 2], (put.body, got.body)
    # market_data and sector really reached the cache over mTLS (they fall back silently).
    assert prefixes.get("stock", 0) >= 1, prefixes
    assert prefixes.get("history", 0) >= 1, prefixes
    assert prefixes.get("sectors", 0) >= 1 or prefixes.get("snapshots", 0) >= 1, prefixes
    assert plaintext == dict.fromkeys(plaintext, grpc.StatusCode.UNAVAILABLE)


def test_every_outgoing_channel_is_opened_by_open_channel_with_the_tls_config() -> None:
    """grpc channels are created in one place, which applies TLS_*; callers pass the config."""
    offenders = []
    calls = []
    for path in sorted((REPO / "services").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else getattr(node.func, "id", "")
            )
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if name in ("insecure_channel", "secure_channel") and path.name != "channels.py":
                offenders.append(where)
            if name == "open_channel" and path.name != "channels.py":
                calls.append(where)
                if len(node.args) + len(node.keywords) < 2:
                    offenders.append(f"{where}: open_channel without a TLS config")
    assert not offenders, offenders
    assert len(calls) >= 3, calls  # gateway, sector→market_data, the cache client
