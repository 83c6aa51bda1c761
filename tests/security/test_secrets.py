"""Secrets never appear in logs, errors or metrics of the real processes.

The whole system runs at LOG_LEVEL=debug with an admin token, provider API
keys and a PostgreSQL password in its environment; then it is driven through
its error paths (wrong and near-miss tokens, every upstream fault, a bad news
API key, the database refusing logins, bad input) and every log line, every
/metrics page, every REST body and header and every gRPC error is scanned.
"""

from __future__ import annotations

import secrets
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import grpc
import psycopg
import pytest

from marketcache.v1 import cache_pb2, cache_pb2_grpc, sector_pb2, sector_pb2_grpc
from tests.gateway.stack import request
from tests.reliability.records import nothing_lost, record
from tests.reliability.upstream_process import upstream_process
from tests.support.postgres import PG_ADMIN_DSN, require_postgres
from tests.support.processes import ServiceProcess, running, running_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

ADMIN_TOKEN = "adm-" + secrets.token_hex(16)
FMP_KEY = "fmp-" + secrets.token_hex(16)
NEWS_KEY = "news-" + secrets.token_hex(16)  # deliberately not the key the upstream expects
DB_PASSWORD = "pw-" + secrets.token_hex(16)
SECRETS = {
    "ADMIN_TOKEN": ADMIN_TOKEN,
    "FMP_API_KEY": FMP_KEY,
    "NEWSAPI_KEY": NEWS_KEY,
    "database password": DB_PASSWORD,
}


def _needles() -> dict[str, str]:
    """What to look for: each secret, its URL-encoded form, and its middle (near-miss echoes)."""
    needles = {}
    for name, value in SECRETS.items():
        needles[name] = value
        needles[f"{name} (URL-encoded)"] = urllib.parse.quote(value, safe="")
        needles[f"{name} (middle)"] = value[5:25]
    return needles


@contextmanager
def database_with_password() -> Iterator[tuple[str, str]]:
    """A role with a password and its own database; yields (SQLAlchemy URL, role)."""
    require_postgres()
    role = f"mc_secret_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{DB_PASSWORD}'")
        conn.execute(f'CREATE DATABASE "{role}" OWNER {role}')
    base = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg://{role}:{DB_PASSWORD}@{base}/{role}", role
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def _set_login(role: str, allowed: bool) -> None:
    """Allow or refuse the role's logins; refusing also cuts its open connections."""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {role} {'LOGIN' if allowed else 'NOLOGIN'}")
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def _grpc_errors(cache: str, sector: str) -> list[str]:
    """Admin RPCs with near-miss tokens and bad input; every error's details and trailers."""
    seen = []
    near_misses = [f"Bearer {ADMIN_TOKEN[:-1]}", f"Bearer {ADMIN_TOKEN}x", ADMIN_TOKEN, ""]
    with grpc.insecure_channel(cache) as c, grpc.insecure_channel(sector) as s:
        cache_stub, sector_stub = (
            cache_pb2_grpc.CacheServiceStub(c),
            sector_pb2_grpc.SectorServiceStub(s),
        )
        calls: list[Callable[[tuple[tuple[str, str], ...]], object]] = [
            lambda md: cache_stub.Clear(
                cache_pb2.ClearRequest(prefix="x"), metadata=md, timeout=10
            ),
            lambda md: sector_stub.WarmCache(
                sector_pb2.WarmCacheRequest(), metadata=md, timeout=30
            ),
            lambda md: cache_stub.Get(
                cache_pb2.GetRequest(key="no prefix"), metadata=md, timeout=10
            ),
        ]
        for call in calls:
            for credential in near_misses:
                metadata = (("authorization", credential),) if credential else ()
                try:
                    call(metadata)
                except grpc.RpcError as exc:
                    seen.append(f"{exc.code()} {exc.details()} {exc.trailing_metadata()}")
    return seen


def test_secrets_stay_out_of_logs_errors_and_metrics(tmp_path: Path) -> None:
    texts: dict[str, str] = {}
    with ExitStack() as stack:
        url, role = stack.enter_context(database_with_password())
        upstream = stack.enter_context(upstream_process(tmp_path / "upstream", api_key=FMP_KEY))
        debug = {"LOG_LEVEL": "debug", "LOG_FORMAT": "json"}
        cache = stack.enter_context(
            running(
                "cache",
                {
                    "CACHE_LISTEN": "127.0.0.1:0",
                    "CACHE_METRICS_LISTEN": "127.0.0.1:0",
                    "CACHE_DB_URL": url,
                    "ADMIN_TOKEN": ADMIN_TOKEN,
                    **debug,
                },
                tmp_path / "cache",
            )
        )
        market = stack.enter_context(
            running(
                "market_data",
                {
                    "MARKET_DATA_LISTEN": "127.0.0.1:0",
                    "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
                    "MARKET_PROVIDER": "fmp",
                    "FMP_API_KEY": FMP_KEY,
                    "FMP_BASE_URL": upstream.url,
                    "NEWSAPI_KEY": NEWS_KEY,
                    "NEWSAPI_BASE_URL": upstream.url,
                    "MARKET_SYNTHETIC_DATE": "2025-01-15",
                    "MARKET_UPSTREAM_TIMEOUT": "0.5",
                    "MARKET_RETRY_BASE_SECONDS": "0.01",
                    "MARKET_RETRY_MAX_SECONDS": "0.02",
                    "MARKET_BREAKER_FAILURES": "1000",
                    "CACHE_ADDR": cache.grpc_address,
                    "CACHE_CLIENT_TIMEOUT": "2",
                    **debug,
                },
                tmp_path / "market",
            )
        )
        sector = stack.enter_context(
            running(
                "sector",
                {
                    "SECTOR_LISTEN": "127.0.0.1:0",
                    "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
                    "CACHE_ADDR": cache.grpc_address,
                    "MARKET_DATA_ADDR": market.grpc_address,
                    "ADMIN_TOKEN": ADMIN_TOKEN,
                    "SECTOR_CACHE_RETRY_SECONDS": "0",
                    **debug,
                },
                tmp_path / "sector",
            )
        )
        gateway = stack.enter_context(
            running_http(
                "gateway",
                {
                    "GATEWAY_LISTEN": "127.0.0.1:0",
                    "CACHE_ADDR": cache.grpc_address,
                    "MARKET_DATA_ADDR": market.grpc_address,
                    "SECTOR_ADDR": sector.grpc_address,
                    "ADMIN_TOKEN": ADMIN_TOKEN,
                    **debug,
                },
                tmp_path / "gateway",
            )
        )
        replies = _exercise(gateway, upstream.fault, upstream.clear)
        statuses = sorted({int(r.split(" ", 1)[0]) for r in replies})
        # The database refuses the cache's logins for a while: its errors are logged too.
        _set_login(role, allowed=False)
        replies += _exercise(gateway, upstream.fault, upstream.clear)
        _set_login(role, allowed=True)
        replies += _grpc_errors(cache.grpc_address, sector.grpc_address)
        for proc in (cache, market, sector):
            texts[f"{proc.name} /metrics"] = _metrics(proc.metrics_port)
        texts["gateway /metrics"] = request(gateway.http_url, "GET", "/metrics").body
        texts["gateway /openapi.json"] = str(request(gateway.http_url, "GET", "/openapi.json").body)
        processes: list[ServiceProcess] = [cache, market, sector, gateway]
    for proc in processes:
        texts[f"{proc.name} log"] = proc.log()
    texts["upstream log"] = upstream.log()
    texts["answers"] = "\n".join(replies)
    leaks = [
        f"{needle_name} in {where}"
        for where, text in texts.items()
        for needle_name, needle in _needles().items()
        if needle in text
    ]
    log_lines = sum(len(texts[f"{p.name} log"].splitlines()) for p in processes)
    errors_logged = sum(
        texts[f"{p.name} log"].count('"level": "error"')
        + texts[f"{p.name} log"].count('"level": "warning"')
        for p in processes
    )
    record(
        "secrets kept out of logs, errors and metrics",
        tried=(
            "cache, market_data, sector and gateway at LOG_LEVEL=debug with an admin token, FMP "
            "and NewsAPI keys (the latter wrong) and a PostgreSQL password in the URL; wrong and "
            "near-miss tokens over gRPC and REST, every upstream fault, the database refusing "
            "logins, bad input; then every log, /metrics page, answer body and gRPC error scanned "
            "for each secret, its URL-encoded form and its middle"
        ),
        cases=f"{len(replies)} answers, {log_lines} log lines ({errors_logged} warnings/errors), "
        f"{len(SECRETS)} secrets",
        lost=nothing_lost(len(leaks), "leaks"),
        figures={"statuses seen before the database outage": statuses, "leaks": leaks},
        passed=not leaks,
    )
    assert not leaks, leaks
    # The error paths really ran: refusals, upstream failures and database trouble.
    assert {400, 401, 403} <= set(statuses), statuses
    assert any(status >= 500 for status in statuses), statuses
    assert errors_logged > 0
    # The outage is one warning naming the database (services/cache/storage/db_link.py): the
    # line most likely to carry the URL's password, so it must have been scanned.
    assert "unreachable" in texts["cache log"], "the database outage was logged by the cache"


def _exercise(
    gateway: ServiceProcess, fault: Callable[[str], None], clear: Callable[[], None]
) -> list[str]:
    """REST calls over the happy path and the error paths; 'status body headers' per answer."""
    url = gateway.http_url
    calls: list[tuple[str, str, object, dict[str, str]]] = [
        ("GET", "/api/v1/market/quotes/AAPL", None, {}),
        ("GET", "/api/v1/market/history/AAPL?days=5", None, {}),
        ("GET", "/api/v1/market/news/AAPL", None, {}),
        ("GET", "/api/v1/sectors/XLK", None, {}),
        (
            "PUT",
            "/api/v1/cache/keys/secret:k",
            {"value": 1},
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ),
        (
            "PUT",
            "/api/v1/cache/keys/secret:k",
            {"value": 1},
            {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        ),
        ("PUT", "/api/v1/cache/keys/secret:k", {"value": 1}, {"Authorization": ADMIN_TOKEN}),
        ("PUT", "/api/v1/cache/keys/secret:k", {"value": 1}, {}),
        ("DELETE", "/api/v1/sectors/cache", None, {"Authorization": f"Bearer {ADMIN_TOKEN}x"}),
        ("GET", "/api/v1/cache/keys/no%20prefix", None, {}),
        ("GET", "/api/v1/cache/health", None, {}),
        ("GET", "/readyz", None, {}),
    ]
    answers = []
    for kind in (None, "http500", "timeout", "garbage", "rate_limit", "bad_key"):
        if kind is not None:
            fault(kind)
        for method, path, body, headers in calls:
            if kind is not None and "/market/" not in path and "/sectors/" not in path:
                continue
            reply = request(url, method, path, body, headers=headers)
            answers.append(f"{reply.status} {reply.body} {reply.headers}")
        clear()
    return answers
