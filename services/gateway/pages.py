"""The gateway's web face: the landing page, Swagger UI at /docs, the live dashboard.

Every byte a page needs is served by the gateway itself: our own HTML, CSS and
JavaScript from `static/` (package data), Swagger UI's assets from the
`swagger-ui-bundle` package. Nothing comes from a CDN, so the pages work with
no network, and the Content-Security-Policy makes the browser refuse anything
that would.
"""

from __future__ import annotations

import html
import string
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
import swagger_ui_bundle  # type: ignore[import-untyped]
from aiohttp import web

from services.gateway.errors import HttpError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# service full name -> {"address": ..., "status": "SERVING" | reason}
BackendStates = Callable[[], Awaitable[Mapping[str, Mapping[str, str]]]]

STATIC_DIR = Path(__file__).with_name("static")
SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)
# The Swagger UI files /docs loads; the bundle's own index and templates are not served.
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js")
STATIC_PREFIX = "/static/"
SWAGGER_PREFIX = "/static/swagger-ui/"
# Same-origin only. Swagger UI sets inline styles on its elements, hence 'unsafe-inline'
# for styles (never for scripts); its icons are data: URIs.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Pages and assets change with the gateway's version: revalidate (ETag) rather than guess.
    "Cache-Control": "no-cache",
}
LANDING_LINKS = (
    ("/dashboard", "Dashboard", "sectors heat map, hit rate, keys and memory per prefix, pushed"),
    ("/docs", "API docs", "Swagger UI over every REST route; try them from the browser"),
    ("/openapi.json", "OpenAPI", "the OpenAPI 3.0 document the routes are generated from"),
    ("/metrics", "Metrics", "the gateway's Prometheus metrics"),
    ("/readyz", "Readiness", "JSON: each backend's grpc.health.v1 status"),
)


class WebFace:
    """Answers the page and asset paths; `handler(path)` is None for any other path."""

    def __init__(self, backend_states: BackendStates, route_count: int, cache_addr: str) -> None:
        self._backend_states = backend_states
        self._route_count = route_count
        self._cache_addr = cache_addr
        self._landing = string.Template((STATIC_DIR / "landing.html").read_text())
        self._pages: dict[str, Handler] = {
            "/": self._landing_page,
            "/docs": _file_handler(STATIC_DIR / "docs.html"),
            "/dashboard": _file_handler(STATIC_DIR / "dashboard.html"),
        }
        # Built once from what is on disk, so a request can never name a path outside them.
        self._assets: dict[str, Handler] = {
            SWAGGER_PREFIX + name: _file_handler(SWAGGER_DIR / name) for name in SWAGGER_ASSETS
        }
        for path in sorted(STATIC_DIR.iterdir()):
            if path.is_file() and path.suffix in (".css", ".js", ".svg"):
                self._assets[STATIC_PREFIX + path.name] = _file_handler(path)
        missing = [name for name in SWAGGER_ASSETS if not (SWAGGER_DIR / name).is_file()]
        if missing:
            raise RuntimeError(f"swagger-ui-bundle lacks {', '.join(missing)} in {SWAGGER_DIR}")

    @property
    def paths(self) -> list[str]:
        """Every path this serves: pages first, then assets."""
        return [*self._pages, *sorted(self._assets)]

    def handler(self, path: str) -> tuple[str, Handler] | None:
        """(metrics route label, handler) for a page or asset path; None when not ours."""
        page = self._pages.get(path)
        if page is not None:
            return path, page
        if not path.startswith(STATIC_PREFIX):
            return None
        asset = self._assets.get(path)
        label = SWAGGER_PREFIX + "{asset}" if path.startswith(SWAGGER_PREFIX) else "/static/{asset}"
        return label, asset or _no_asset

    async def _landing_page(self, request: web.Request) -> web.Response:
        states = await self._backend_states()
        body = self._landing.substitute(
            backends="\n".join(_backend_row(name, info) for name, info in sorted(states.items())),
            links="\n".join(
                f'<li><a href="{href.lstrip("/") or "."}">{html.escape(title)}</a>'
                f" <code>{html.escape(href)}</code> — {html.escape(what)}</li>"
                for href, title, what in LANDING_LINKS
            ),
            route_count=self._route_count,
            gateway_url=html.escape(f"{request.scheme}://{request.host}"),
            cache_addr=html.escape(self._cache_addr),
            ready="ready" if all(i["status"] == "SERVING" for i in states.values()) else "degraded",
        )
        return web.Response(text=body, content_type="text/html", headers=PAGE_HEADERS)


def _backend_row(service: str, info: Mapping[str, Any]) -> str:
    status = str(info["status"])
    state = "up" if status == "SERVING" else "down"
    return (
        f'<tr data-service="{html.escape(service)}"><td>{html.escape(service)}</td>'
        f"<td><code>{html.escape(str(info['address']))}</code></td>"
        f'<td><span class="badge {state}">{html.escape(status)}</span></td></tr>'
    )


def _file_handler(path: Path) -> Handler:
    async def serve(_request: web.Request) -> web.StreamResponse:
        # FileResponse answers HEAD, If-None-Match and Range itself.
        return web.FileResponse(path, headers=PAGE_HEADERS)

    return serve


async def _no_asset(request: web.Request) -> web.StreamResponse:
    raise HttpError(
        404,
        grpc.StatusCode.NOT_FOUND,
        f"no static asset {request.rel_url.path}; the pages are /, /docs and /dashboard, "
        "the API routes are listed in /openapi.json",
    )
