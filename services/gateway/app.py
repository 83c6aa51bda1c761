"""The aiohttp application: one dispatcher for every route, metrics, limits and error bodies."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from google.protobuf import descriptor, message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.common.auth import AdminAuth
from services.common.channels import open_channel
from services.common.errors import ServiceError
from services.gateway.config import GatewaySettings
from services.gateway.dashboard_feed import DashboardFeed
from services.gateway.errors import HttpError, rpc_error_body, service_error_body, status_body
from services.gateway.events import EVENTS_PATH, EventHub
from services.gateway.headers import forwarded_metadata, parse_timeout
from services.gateway.metrics import UNMATCHED, HttpMetrics
from services.gateway.openapi import build_openapi
from services.gateway.pages import WebFace
from services.gateway.pattern import PathError
from services.gateway.routes import (
    Match,
    MethodNotAllowedError,
    NoRouteError,
    Route,
    Router,
    RouteTableError,
    api_services,
    build_routes,
)
from services.gateway.transcode import build_request, response_json
from services.gateway.transfer import Transfer

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UnaryCall = grpc.aio.UnaryUnaryMultiCallable[message.Message, message.Message]
GATEWAY_KEY: web.AppKey[Gateway] = web.AppKey("gateway")
# The route template a request matched, for the metrics label.
_ROUTE_LABEL: web.RequestKey[str] = web.RequestKey("route", str)
# Route label of CORS preflights, answered before any routing.
PREFLIGHT = "(preflight)"
# The methods a GET-only path of the gateway's own answers.
READ_METHODS = ("GET", "HEAD")


class Gateway:
    """Routes, backend channels and the handlers that transcode between them."""

    def __init__(
        self,
        settings: GatewaySettings,
        registry: CollectorRegistry,
        services: Sequence[descriptor.ServiceDescriptor] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.routes = build_routes(api_services() if services is None else services)
        missing = sorted({r.rpc.service for r in self.routes} - set(settings.backends))
        if missing:
            raise RouteTableError(f"no backend address for {', '.join(missing)}")
        self.router = Router(self.routes)
        self.auth = AdminAuth(settings.admin_token)
        self.metrics = HttpMetrics(registry)
        self.metrics.initialize((r.template.template, r.http_method) for r in self.routes)
        self.openapi_body = json.dumps(build_openapi(self.routes), indent=1).encode()
        self._own: dict[str, Handler] = {
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
            "/openapi.json": self._openapi,
            EVENTS_PATH: self._events,
        }
        self.web = WebFace(
            self.backend_states,
            len(self.routes),
            settings.backends.get("marketcache.v1.CacheService", "127.0.0.1:50051"),
        )
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._calls: dict[str, UnaryCall] = {}
        # Export and import (JSON Lines over the streaming RPCs), beside the route table.
        cache = settings.backends.get("marketcache.v1.CacheService", "")
        self.transfer = Transfer(self.auth, lambda: self._channels.get(cache), _json)
        # The dashboard's pushed events: one feed (one Watch) for every open page.
        self.events = EventHub(
            DashboardFeed(
                cache,
                settings.backends.get("marketcache.v1.SectorService", ""),
                self.channel,
                self.backend_states,
                timeout=settings.default_timeout,
            )
        )

    def backend_of(self, route: Route) -> str:
        """`Service at host:port`, for error messages."""
        return f"{route.rpc.service} at {self.settings.backends[route.rpc.service]}"

    async def open(self) -> None:
        """Open one channel per backend address and one callable per RPC (reused forever)."""
        for address in sorted(set(self.settings.backends.values())):
            self._channels[address] = open_channel(address, self.settings.tls)
        for route in self.routes:
            rpc = route.rpc
            if rpc.full_name in self._calls:
                continue
            channel = self._channels[self.settings.backends[rpc.service]]
            self._calls[rpc.full_name] = channel.unary_unary(
                rpc.grpc_path,
                request_serializer=rpc.request_class.SerializeToString,
                response_deserializer=rpc.response_class.FromString,
            )

    def channel(self, address: str) -> grpc.aio.Channel:
        """The channel to `address`: a backend's, or one opened now (another cache node)."""
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = open_channel(address, self.settings.tls)
        return channel

    async def close(self) -> None:
        """End the event streams, then close the backend channels."""
        await self.events.close()
        channels, self._channels = self._channels, {}
        self._calls.clear()
        for channel in channels.values():
            await channel.close(None)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Answer any request: CORS preflights, own endpoints and pages, then the route table."""
        path = request.rel_url.path
        if _is_preflight(request) and self.settings.cors.enabled:
            request[_ROUTE_LABEL] = PREFLIGHT
            return self._preflight(request)
        own = self._own_handler(path)
        if own is not None:
            request[_ROUTE_LABEL], handler = own
            if request.method not in READ_METHODS:
                raise HttpError(
                    405,
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{path} answers GET and HEAD only, not {request.method}",
                    {"Allow": ", ".join(READ_METHODS)},
                )
            return await handler(request)
        bulk = self.transfer.handler(request.method, path)
        if bulk is not None:
            request[_ROUTE_LABEL] = path
            return await bulk(request)
        raw_path = _raw_path(request)
        try:
            found = self.router.resolve(request.method, raw_path)
        except NoRouteError:
            raise HttpError(
                404,
                grpc.StatusCode.NOT_FOUND,
                f"no route for {request.method} {path}; the routes are listed in /openapi.json",
            ) from None
        except MethodNotAllowedError as exc:
            raise HttpError(
                405,
                grpc.StatusCode.UNIMPLEMENTED,
                f"{path} does not answer {request.method}; allowed: {', '.join(exc.allowed)}",
                {"Allow": ", ".join(exc.allowed)},
            ) from None
        except PathError as exc:
            raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        request[_ROUTE_LABEL] = found.route.template.template
        return await self._call(request, found)

    def _own_handler(self, path: str) -> tuple[str, Handler] | None:
        own = self._own.get(path)
        return (path, own) if own is not None else self.web.handler(path)

    def _preflight(self, request: web.Request) -> web.Response:
        origin = request.headers["Origin"]
        cors = self.settings.cors
        if not cors.allows(origin):
            # No CORS headers: the browser then refuses the actual request itself.
            raise HttpError(
                403,
                grpc.StatusCode.PERMISSION_DENIED,
                f"origin {origin!r} is not allowed; the gateway allows the origins in "
                "GATEWAY_CORS_ORIGINS",
            )
        headers = cors.preflight_headers(
            origin, request.headers.get("Access-Control-Request-Headers")
        )
        return web.Response(status=204, headers=headers)

    async def _call(self, request: web.Request, found: Match) -> web.Response:
        route = found.route
        timeout = parse_timeout(
            request.headers.get("Grpc-Timeout"),
            self.settings.default_timeout,
            self.settings.max_timeout,
        )
        metadata = forwarded_metadata(request.headers.items())
        if route.admin:
            self.auth.check(metadata, route.rpc.name)
        body = await _read_body(request, self.settings.max_body_bytes)
        grpc_request = build_request(found, request.query.items(), body)
        call = self._calls.get(route.rpc.full_name)
        if call is None:
            raise HttpError(503, grpc.StatusCode.UNAVAILABLE, "the gateway is not started")
        try:
            reply = await call(grpc_request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as err:
            status, payload = rpc_error_body(err, self.backend_of(route))
            if status >= 500:
                log.warning(
                    "%s %s: %s: %s",
                    request.method,
                    route.template.template,
                    err.code().name,
                    payload["message"],
                )
            return _json(payload, status)
        return _json(response_json(route, reply), 200)

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        headers: dict[str, str] = {}
        self.settings.cors.decorate(request.headers.get("Origin"), headers)
        return await self.events.handle(request, headers.items())

    async def _openapi(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.openapi_body, content_type="application/json")

    async def backend_states(self) -> dict[str, dict[str, str]]:
        """Each backend's address and grpc.health.v1 status (`SERVING`, or why not)."""
        services = sorted(self.settings.backends)
        answers = await asyncio.gather(*(self._backend_health(s) for s in services))
        return {
            service: {"address": self.settings.backends[service], "status": answer}
            for service, answer in zip(services, answers, strict=True)
        }

    async def _readyz(self, _request: web.Request) -> web.Response:
        backends = await self.backend_states()
        down = [
            f"{service} at {info['address']} is {info['status']}"
            for service, info in backends.items()
            if info["status"] != "SERVING"
        ]
        ready = not down
        payload: dict[str, Any] = {
            "ready": ready,
            "message": "every backend is SERVING" if ready else "not ready: " + "; ".join(down),
            "backends": backends,
        }
        return _json(payload, 200 if ready else 503)

    async def _backend_health(self, service: str) -> str:
        channel = self._channels.get(self.settings.backends[service])
        if channel is None:
            return "UNAVAILABLE (gateway not started)"
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=service),
                timeout=self.settings.ready_timeout,
            )
        except grpc.aio.AioRpcError as err:
            return f"{err.code().name} ({err.details()})"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def _is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def _raw_path(request: web.Request) -> str:
    # The request target exactly as sent (still percent-encoded), so an encoded
    # "/" inside one path parameter does not split it into two segments.
    target = request.raw_path.split("?", 1)[0].split("#", 1)[0]
    return target if target.startswith("/") else request.rel_url.raw_path


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    except RequestPayloadError:
        # aiohttp decodes Content-Encoding itself; a body that does not decode is the client's.
        encoding = request.headers.get("Content-Encoding", "identity")
        raise HttpError(
            400,
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request body could not be decoded as Content-Encoding {encoding!r}; "
            "send it uncompressed, or compressed as the header says",
        ) from None
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the request body is larger than {limit} bytes (GATEWAY_MAX_BODY_BYTES)",
    )


def _json(payload: Any, status: int, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


@web.middleware
async def _errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    started = time.perf_counter()
    try:
        response = await handler(request)
    except HttpError as exc:
        response = _json(exc.body(), exc.http, exc.headers)
    except ServiceError as exc:
        status, payload = service_error_body(exc)
        response = _json(payload, status)
    except web.HTTPException as exc:  # aiohttp's own refusals, in our error shape
        response = _json(
            status_body(grpc.StatusCode.INVALID_ARGUMENT, exc.reason), exc.status, None
        )
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.rel_url.path)
        response = _json(
            status_body(grpc.StatusCode.INTERNAL, "internal error in the gateway"), 500
        )
    gateway.settings.cors.decorate(request.headers.get("Origin"), response.headers)
    route = request.get(_ROUTE_LABEL, UNMATCHED)
    gateway.metrics.observe(route, request.method, response.status, time.perf_counter() - started)
    return response


def build_app(gateway: Gateway) -> web.Application:
    """The aiohttp application serving `gateway`; channels open and close with it."""
    app = web.Application(
        middlewares=[_errors_and_metrics], client_max_size=gateway.settings.max_body_bytes
    )
    app[GATEWAY_KEY] = gateway
    app.router.add_route("*", "/{tail:.*}", gateway.dispatch)

    async def on_startup(_app: web.Application) -> None:
        await gateway.open()

    async def on_shutdown(_app: web.Application) -> None:
        # Event streams never end by themselves: end them, so draining does not wait.
        await gateway.events.close()

    async def on_cleanup(_app: web.Application) -> None:
        await gateway.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
