"""The whole system (started by the launcher) through the REST gateway: every documented path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from services.sector.catalog import SECTORS
from tests.e2e.launched import Launched, launcher_running
from tests.gateway.stack import Reply, request

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Passed through the launcher to the cache: small (yet above a snapshot's ~8 KB), so
# the 429 path is cheap to reach.
MAX_VALUE_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launched]:
    env = {"CACHE_MAX_VALUE_BYTES": str(MAX_VALUE_BYTES)}
    with launcher_running(tmp_path_factory.mktemp("system"), env) as launched:
        yield launched


def call(system: Launched, method: str, path: str, body: Any = None, **kw: Any) -> Reply:
    return request(system.url, method, path, body, **kw)


def ok(reply: Reply) -> Any:
    assert reply.status == 200, reply.body
    return reply.body


def prefix_hits(system: Launched, prefix: str) -> int:
    metrics = ok(call(system, "GET", "/api/v1/cache/metrics"))
    return sum(p.get("hits", 0) for p in metrics["metrics"]["prefixes"] if p["prefix"] == prefix)


def test_snapshot_is_served_from_cache_the_second_time(system: Launched) -> None:
    ok(call(system, "DELETE", "/api/v1/sectors/cache", token=system.token))
    first = ok(call(system, "GET", "/api/v1/sectors/snapshot"))
    assert [s["symbol"] for s in first["sectors"]] == list(SECTORS)
    assert len(first["ranking"]) == 11 and first["benchmark"]["symbol"] == "SPY"
    assert first["cache"]["cached"] is False
    hits = prefix_hits(system, "snapshots")

    second = ok(call(system, "GET", "/api/v1/sectors/snapshot"))
    assert second["cache"]["cached"] is True and second["cache"]["enabled"] is True
    assert second["sectors"] == first["sectors"]
    ok(call(system, "GET", "/api/v1/sectors/snapshot"))
    assert prefix_hits(system, "snapshots") == hits + 2

    # SectorService's own view of the same lookups, on its Prometheus endpoint.
    port = system.summary["children"]["sector"]["metrics_port"]
    scraped = request(f"http://127.0.0.1:{port}", "GET", "/metrics").body
    assert re.search(r'^sector_cache_hits_total\{namespace="snapshots"\} [1-9]', scraped, re.M)
    assert re.search(r"^sector_snapshot_build_seconds_count [1-9]", scraped, re.M)


def test_cache_health_and_metrics_have_the_seed_shape(system: Launched) -> None:
    health = ok(call(system, "GET", "/api/v1/cache/health"))
    assert health["status"] == "healthy" and health["enabled"] is True
    assert isinstance(health["hitRate"], int | float)
    assert {"hits", "misses", "keys"} <= set(health["metrics"])

    metrics = ok(call(system, "GET", "/api/v1/cache/metrics"))
    for name in ("hits", "misses", "hitRate", "keys", "memoryBytes"):
        assert isinstance(metrics[name], int | float), name
    ok(call(system, "GET", "/api/v1/sectors/snapshot"))
    prefixes = {
        p["prefix"] for p in ok(call(system, "GET", "/api/v1/cache/metrics"))["metrics"]["prefixes"]
    }
    assert {"sectors", "snapshots", "metrics"} <= prefixes


def test_sector_paths(system: Launched) -> None:
    listed = ok(call(system, "GET", "/api/v1/sectors"))
    assert [s["symbol"] for s in listed["sectors"]] == list(SECTORS)
    assert listed["benchmark"] == {"symbol": "SPY", "name": "S&P 500"}

    one = ok(call(system, "GET", "/api/v1/sectors/xlk"))
    sector = one["sector"]
    assert (sector["symbol"], sector["name"]) == ("XLK", "Technology")
    assert set(sector["performance"]) == {"day1", "day5", "month1", "month3", "ytd"}
    assert set(sector["relativeStrength"]) == set(sector["performance"])
    assert sector["asOf"].startswith("2025-01-15")  # MARKET_SYNTHETIC_DATE passed through
    assert set(one["cache"]) == {
        "cached",
        "ageSeconds",
        "enabled",
        "freshForSeconds",
        "session",
        "freshnessReason",
    }
    assert one["cache"]["session"] in ("open", "closed", "holiday")

    warmed = ok(call(system, "POST", "/api/v1/sectors/cache/warm", {}, token=system.token))
    assert (warmed["warmed"], warmed["snapshot"]) == (12, True)
    stats = ok(call(system, "GET", "/api/v1/sectors/cache/stats"))
    assert stats["status"] == "healthy" and stats["enabled"] is True
    assert [n["namespace"] for n in stats["namespaces"]] == ["sectors", "snapshots", "metrics"]
    assert [n["keys"] for n in stats["namespaces"]] == [12, 1, 12]

    batch = {"sectors": [{"symbol": "XLE", "price": 77.5}], "ttlSeconds": 60}
    assert ok(call(system, "POST", "/api/v1/sectors/batch", batch, token=system.token)) == {
        "written": 1
    }
    assert ok(call(system, "GET", "/api/v1/sectors/XLE"))["sector"]["price"] == 77.5

    cleared = ok(call(system, "DELETE", "/api/v1/sectors/cache", token=system.token))
    assert cleared["namespaces"] == ["sectors", "snapshots", "metrics"]
    assert cleared["deleted"] == 12 + 12  # the batch write dropped the snapshot


def test_cache_key_paths(system: Launched) -> None:
    token = system.token
    stored = ok(
        call(
            system,
            "PUT",
            "/api/v1/cache/keys/e2e:one",
            {"value": {"n": 1}, "ttlSeconds": 60},
            token=token,
        )
    )
    assert stored["key"] == "e2e:one"
    got = ok(call(system, "GET", "/api/v1/cache/keys/e2e:one"))
    assert got["found"] is True and got["value"] == {"n": 1}
    items = [{"key": "e2e:two", "value": [1, 2]}, {"key": "e2e:three", "value": "x"}]
    mset = ok(call(system, "POST", "/api/v1/cache/mset", {"items": items}, token=token))
    assert mset["written"] == 2 and [p["prefix"] for p in mset["positions"]] == ["e2e"]
    results = ok(
        call(system, "POST", "/api/v1/cache/mget", {"keys": ["e2e:two", "e2e:none", "e2e:three"]})
    )["results"]
    assert [r.get("found", False) for r in results] == [True, False, True]
    assert results[0]["value"] == [1, 2]
    assert ok(call(system, "DELETE", "/api/v1/cache/keys/e2e:one", token=token))["deleted"] is True
    assert ok(call(system, "GET", "/api/v1/cache/keys/e2e:one")).get("found", False) is False
    cleared = ok(call(system, "DELETE", "/api/v1/cache/prefixes/e2e", token=token))
    assert cleared["deleted"] == 2


def test_market_paths(system: Launched) -> None:
    quote = ok(call(system, "GET", "/api/v1/market/quotes/XLK"))
    assert quote["quote"]["symbol"] == "XLK" and quote["quote"]["price"] > 0
    quotes = ok(call(system, "GET", "/api/v1/market/quotes?symbols=XLK,SPY"))
    assert [r["symbol"] for r in quotes["results"]] == ["XLK", "SPY"]
    history = ok(call(system, "GET", "/api/v1/market/history/XLK?days=5"))
    assert len(history["bars"]) == 5 and history["bars"][-1]["date"] == "2025-01-15"
    news = ok(call(system, "GET", "/api/v1/market/news/XLK"))
    assert news["symbol"] == "XLK" and news["articles"]


def test_operational_paths(system: Launched) -> None:
    openapi = ok(call(system, "GET", "/openapi.json"))
    assert "/api/v1/sectors/snapshot" in openapi["paths"]
    assert call(system, "GET", "/healthz").status == 200
    ready = ok(call(system, "GET", "/readyz"))
    assert ready["ready"] is True
    metrics = call(system, "GET", "/metrics")
    assert metrics.status == 200 and "# TYPE" in metrics.body


ERROR_CASES = [
    # method, path, body, extra headers, HTTP status, google.rpc code
    ("GET", "/api/v1/sectors/AAPL", None, {}, 404, 5),
    ("GET", "/api/v1/sectors/X%20K", None, {}, 400, 3),
    ("GET", "/api/v1/market/history/XLK?days=9999", None, {}, 400, 3),
    ("PUT", "/api/v1/cache/keys/noprefix", {"value": 1}, {}, 400, 3),
    ("PUT", "/api/v1/cache/keys/e2e:big", {"value": "x" * 2 * MAX_VALUE_BYTES}, {}, 429, 8),
    ("GET", "/api/v1/sectors/snapshot", None, {"Grpc-Timeout": "1n"}, 504, 4),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: f"{c[4]}-{c[0]}-{c[1][:30]}")
def test_errors_map_to_the_documented_http_status(
    system: Launched, case: tuple[str, str, Any, dict[str, str], int, int]
) -> None:
    method, path, body, headers, http, code = case
    reply = call(system, method, path, body, token=system.token, headers=headers)
    assert reply.status == http, reply.body
    assert set(reply.body) == {"code", "message", "details"}
    assert reply.body["code"] == code and reply.body["message"]


ADMIN_ROUTES = [
    ("PUT", "/api/v1/cache/keys/e2e:x", {"value": 1}),
    ("DELETE", "/api/v1/cache/keys/e2e:x", None),
    ("POST", "/api/v1/cache/mset", {"items": [{"key": "e2e:x", "value": 1}]}),
    ("DELETE", "/api/v1/cache/prefixes/e2e", None),
    ("POST", "/api/v1/sectors/cache/warm", {}),
    ("DELETE", "/api/v1/sectors/cache", None),
    ("POST", "/api/v1/sectors/batch", {"sectors": [{"symbol": "XLK", "price": 1}]}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_admin_routes_refuse_without_the_token(
    system: Launched, method: str, path: str, body: Any
) -> None:
    missing = call(system, method, path, body)
    assert (missing.status, missing.body["code"]) == (401, 16)
    wrong = call(system, method, path, body, token="not-the-token")
    assert (wrong.status, wrong.body["code"]) == (403, 7)
