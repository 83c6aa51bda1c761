"""The gateway's web face over plain HTTP: pages, local Swagger UI assets, CORS and HEAD."""

from __future__ import annotations

import asyncio
import http.client
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from services.common.config import ConfigError, Env
from services.gateway.config import GatewaySettings
from services.gateway.cors import CorsPolicy
from services.gateway.pages import SWAGGER_DIR
from tests.gateway.conftest import StartGateway
from tests.gateway.stack import TOKEN, Stack, gateway_stack, request
from tests.support.processes import REPO

APP = "http://app.example:3000"
# Headers whose value may differ between two answers to the same request.
VOLATILE = {"date", "content-length", "etag", "last-modified"}


@dataclass
class Raw:
    """An HTTP answer as sent: status, headers (lower-case names), body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def fetch(base: str, method: str, path: str, headers: Mapping[str, str] | None = None) -> Raw:
    """One request with http.client: no redirects, no body parsing, HEAD answered as sent."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request(method, path, headers=dict(headers or {}))
        reply = conn.getresponse()
        body = reply.read()
        return Raw(reply.status, {k.lower(): v for k, v in reply.getheaders()}, body)
    finally:
        conn.close()


async def afetch(
    base: str, method: str, path: str, headers: Mapping[str, str] | None = None
) -> Raw:
    """`fetch` off the event loop, which serves the in-process gateway meanwhile."""
    return await asyncio.to_thread(fetch, base, method, path, headers)


def cors_headers(reply: Raw) -> dict[str, str]:
    return {k: v for k, v in reply.headers.items() if k.startswith("access-control-")}


class _Refs(HTMLParser):
    """Every href and src of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.refs.append((tag, value))


def refs_of(page: bytes) -> list[tuple[str, str]]:
    parser = _Refs()
    parser.feed(page.decode())
    return parser.refs


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "origins", "any_origin"),
    [
        (None, frozenset(), False),
        ("  ", frozenset(), False),
        ("*", frozenset(), True),
        ("https://A.example, http://b:8080 ,", {"https://a.example", "http://b:8080"}, False),
    ],
)  # fmt: skip
def test_cors_origins_parse(value: str | None, origins: set[str], any_origin: bool) -> None:
    policy = CorsPolicy.parse(value)
    assert (set(policy.origins), policy.any_origin) == (set(origins), any_origin)
    assert policy.enabled == bool(origins or any_origin)


@pytest.mark.parametrize(
    "value", ["app.example", "https://app.example/path", "*, https://a.example", "ftp://x.example"]
)
def test_bad_cors_origins_fail_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^GATEWAY_CORS_ORIGINS: "):
        GatewaySettings.from_env(Env({"GATEWAY_CORS_ORIGINS": value}))


def test_the_gateway_process_refuses_to_start_with_bad_cors_origins(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        env={"PATH": "/usr/bin:/bin", "GATEWAY_CORS_ORIGINS": "app.example", "HOME": str(tmp_path)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "GATEWAY_CORS_ORIGINS" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- CORS against an in-process gateway ------------------------------------------------------


async def test_preflight_from_an_allowed_origin(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(cors=CorsPolicy.parse(f"{APP}, https://other.example"))
    reply = await afetch(
        gateway.url,
        "OPTIONS",
        "/api/v1/cache/keys/stock:AAPL",
        {
            "Origin": APP,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type, grpc-metadata-trace",
        },
    )
    assert reply.status == 204
    assert reply.body == b""
    assert reply.headers["access-control-allow-origin"] == APP
    methods = {m.strip() for m in reply.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "HEAD", "PUT", "POST", "DELETE"} <= methods
    allowed = {h.strip().lower() for h in reply.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "grpc-metadata-trace"} <= allowed
    assert int(reply.headers["access-control-max-age"]) > 0
    assert "Origin" in reply.headers["vary"]


async def test_preflight_from_a_disallowed_origin_gets_no_cors_headers(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(cors=CorsPolicy.parse(APP))
    reply = await afetch(
        gateway.url,
        "OPTIONS",
        "/api/v1/cache/keys/stock:AAPL",
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
    )
    assert reply.status == 403
    assert cors_headers(reply) == {}
    assert b"GATEWAY_CORS_ORIGINS" in reply.body


async def test_actual_requests_carry_cors_headers_only_for_allowed_origins(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(cors=CorsPolicy.parse(APP))
    allowed = await afetch(gateway.url, "GET", "/healthz", {"Origin": APP})
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == APP
    assert "allow" in allowed.headers["access-control-expose-headers"].lower()
    assert "Origin" in allowed.headers["vary"]
    # Errors too: a browser script must be able to read why its call failed.
    failed = await afetch(gateway.url, "GET", "/api/v1/cache/keys/a:b", {"Origin": APP})
    assert failed.status == 503
    assert failed.headers["access-control-allow-origin"] == APP
    denied = await afetch(gateway.url, "GET", "/healthz", {"Origin": "https://evil.example"})
    assert denied.status == 200
    assert cors_headers(denied) == {}
    assert "Origin" in denied.headers["vary"]  # the answer depends on Origin: caches must know


async def test_wildcard_allows_every_origin(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(cors=CorsPolicy.parse("*"))
    reply = await afetch(
        gateway.url,
        "OPTIONS",
        "/api/v1/cache/mget",
        {"Origin": "https://anyone.example", "Access-Control-Request-Method": "POST"},
    )
    assert (reply.status, reply.headers["access-control-allow-origin"]) == (204, "*")
    actual = await afetch(gateway.url, "GET", "/healthz", {"Origin": "https://anyone.example"})
    assert actual.headers["access-control-allow-origin"] == "*"


async def test_cors_is_off_by_default(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    preflight = await afetch(
        gateway.url,
        "OPTIONS",
        "/api/v1/cache/keys/a:b",
        {"Origin": APP, "Access-Control-Request-Method": "PUT"},
    )
    assert preflight.status == 405
    assert cors_headers(preflight) == {}
    actual = await afetch(gateway.url, "GET", "/healthz", {"Origin": APP})
    assert cors_headers(actual) == {}
    assert "vary" not in actual.headers


# -- pages and assets (in-process gateway, backends down) ------------------------------------


async def test_landing_page_links_and_backend_health(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    page = await afetch(gateway.url, "GET", "/")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    links = {urljoin(gateway.url + "/", ref) for tag, ref in refs_of(page.body) if tag == "a"}
    for path in ("/dashboard", "/docs", "/openapi.json", "/metrics"):
        assert gateway.url + path in links, path
    for link in links:
        assert link.startswith(gateway.url + "/"), link
        assert (await afetch(gateway.url, "GET", urlsplit(link).path)).status in (200, 503), link
    text = page.body.decode()
    # The backends are down here: the page says so, for each one, as /readyz does.
    for service in ("CacheService", "MarketDataService", "SectorService"):
        row = re.search(rf'<tr data-service="marketcache\.v1\.{service}">.*?</tr>', text)
        assert row is not None, service
        assert "SERVING</span>" not in row.group(0)
        assert "UNAVAILABLE" in row.group(0)
    assert 'class="badge degraded"' in text


async def test_docs_assets_are_served_by_the_gateway(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    page = await afetch(gateway.url, "GET", "/docs")
    assert page.status == 200
    refs = refs_of(page.body)
    assert refs, "the docs page loads nothing"
    for _, ref in refs:
        assert not urlsplit(ref).scheme and not ref.startswith("//"), f"{ref} is not local"
    local = {urlsplit(urljoin(gateway.url + "/docs", ref)).path for _, ref in refs}
    assert {"/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css"} <= local
    for path in local:
        reply = await afetch(gateway.url, "GET", path)
        assert reply.status == 200, path
        assert reply.body, path
    bundle = await afetch(gateway.url, "GET", "/static/swagger-ui/swagger-ui-bundle.js")
    assert bundle.body == (SWAGGER_DIR / "swagger-ui-bundle.js").read_bytes()
    assert "javascript" in bundle.headers["content-type"]
    init = (await afetch(gateway.url, "GET", "/static/docs.js")).body.decode()
    assert "openapi.json" in init and "validatorUrl: null" in init
    # Only listed assets: no way out of the asset directories.
    for path in ("/static/swagger-ui/index.html", "/static/..%2Fpages.py", "/static/landing.html"):
        assert (await afetch(gateway.url, "GET", path)).status == 404, path


async def test_pages_forbid_loading_from_elsewhere(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    for path in ("/", "/docs", "/dashboard"):
        policy = (await afetch(gateway.url, "GET", path)).headers["content-security-policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy, path
        assert "http" not in policy, path


async def test_pages_answer_get_and_head_only(start_gateway: StartGateway) -> None:
    gateway = await start_gateway()
    reply = await afetch(gateway.url, "POST", "/dashboard")
    assert (reply.status, reply.headers["allow"]) == (405, "GET, HEAD")


# -- HEAD on every GET route, against the real services ---------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with gateway_stack(tmp_path_factory.mktemp("web-http"), market_data=True, sector=True) as up:
        yield up


def _get_paths(stack: Stack) -> list[str]:
    spec = request(stack.url, "GET", "/openapi.json").body
    values = {"key": "web:head", "prefix": "web", "symbol": "XLK"}
    paths = [
        re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        for path, operations in spec["paths"].items()
        # An event stream never ends, so a GET of it has no whole answer to compare.
        if "get" in operations
        and "text/event-stream" not in operations["get"]["responses"]["200"]["content"]
    ]
    own = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/docs", "/dashboard"]
    assets = ["/static/dashboard.js", "/static/site.css", "/static/swagger-ui/swagger-ui.css"]
    return [*paths, *own, *assets]


@pytest.mark.e2e
def test_head_answers_every_get_route_with_its_status_and_headers(stack: Stack) -> None:
    put = request(stack.url, "PUT", "/api/v1/cache/keys/web:head", {"value": 1}, token=TOKEN)
    assert put.status == 200, put.body
    paths = _get_paths(stack)
    assert len(paths) >= 20
    for path in paths:
        get = fetch(stack.url, "GET", path)
        head = fetch(stack.url, "HEAD", path)
        assert head.status == get.status, path
        assert head.body == b"", path
        same = {k: v for k, v in get.headers.items() if k not in VOLATILE}
        assert {k: v for k, v in head.headers.items() if k not in VOLATILE} == same, path
        assert "content-length" in head.headers, path
        if path.startswith("/static/") or path in ("/docs", "/dashboard", "/openapi.json"):
            assert int(head.headers["content-length"]) == len(get.body), path
    statuses = {fetch(stack.url, "HEAD", p).status for p in paths}
    assert 200 in statuses


@pytest.mark.e2e
def test_landing_page_shows_the_real_backends_serving(stack: Stack) -> None:
    page = fetch(stack.url, "GET", "/")
    text = page.body.decode()
    assert text.count('<span class="badge up">SERVING</span>') == 3
    assert 'class="badge ready"' in text
    cache = stack.backends["cache"].grpc_address
    assert f"grpcurl -plaintext {cache} list" in text
