"""One wrapper per unary method, built once when the method is registered.

Every unary call needs three things around its handler: the go-grpc-prometheus
metrics and the concurrency limit, INVALID_ARGUMENT for a request whose bytes do
not parse, and a ServiceError turned into its gRPC status. As two
`grpc.aio.ServerInterceptor`s and a decorator they cost three coroutine frames,
a new handler object and a closure per call, and grpc's asynchronous interceptor
chain on every lookup (#22). Here they are one coroutine, made once per method
at registration, and the server runs with no interceptor at all.

Streaming handlers are registered unchanged: decoding failures and metrics of
streams were never wrapped, and their own `answers_service_errors` still maps
their errors.
"""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from services.common.errors import SERVICE_ERRORS_INNER, ServiceError, abort
from services.common.grpc_metrics import MethodSeries, ServerMetrics

Context = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[[Any, Context], Awaitable[Any]]
if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]


class _Undecodable:
    """Stands in for a request that did not parse; carries the parser's reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _InFlight:
    """Unary calls running now, against the limit (shared by every method)."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.count = 0


class UnaryCalls:
    """Wraps the unary handlers registered through `registrar(server)`, once per method."""

    def __init__(self, metrics: ServerMetrics, max_concurrent: int | None = None) -> None:
        self._metrics = metrics
        # #12: the concurrency limit is enforced here, not by grpcio's
        # maximum_concurrent_rpcs, whose refusals never reach our code (uncounted);
        # a refusal here is RESOURCE_EXHAUSTED and counted.
        self._in_flight = _InFlight(max_concurrent)
        # Generic handlers answer by lookup on every call: their wrapped handlers
        # are kept per method (with the handler they wrap, in case it changes).
        self._generic: dict[str, tuple[Handler, Handler]] = {}

    def registrar(self, server: grpc.aio.Server) -> grpc.aio.Server:
        """`server` as the generated `add_*_to_server` functions see it, wrapping as they add."""
        return _Registrar(server, self)  # type: ignore[return-value]

    def wrap(self, full_method: str, handler: Handler) -> Handler:
        """The handler with metrics, the decoding check and error mapping (unary only)."""
        if handler is None or handler.unary_unary is None:
            return handler
        service, _, method = full_method.lstrip("/").rpartition("/")
        return _wrapped(handler, MethodSeries(self._metrics, service, method), self._in_flight)

    def wrap_cached(self, full_method: str, handler: Handler) -> Handler:
        """`wrap`, made once per method for handlers a generic handler looks up per call."""
        cached = self._generic.get(full_method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self.wrap(full_method, handler)
        self._generic[full_method] = (handler, wrapped)
        return wrapped


class _Registrar:
    """Stands for the server while services register: their unary handlers get wrapped."""

    def __init__(self, server: grpc.aio.Server, calls: UnaryCalls) -> None:
        self._server = server
        self._calls = calls

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, Handler]
    ) -> None:
        wrapped = {
            name: self._calls.wrap(f"/{service_name}/{name}", handler)
            for name, handler in method_handlers.items()
        }
        self._server.add_registered_method_handlers(service_name, wrapped)  # type: ignore[attr-defined]

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:  # type: ignore[type-arg]
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGeneric(handler, self._calls) for handler in handlers)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class _WrappedGeneric(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    def __init__(self, inner: grpc.GenericRpcHandler, calls: UnaryCalls) -> None:  # type: ignore[type-arg]
        self._inner = inner
        self._calls = calls

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        return self._calls.wrap_cached(handler_call_details.method, handler)


def _unmapped(behavior: Behavior) -> Behavior:
    """The servicer method under its `answers_service_errors`, bound alike: the mapping is
    done here once, not by a second coroutine frame per call."""
    inner = getattr(getattr(behavior, "__func__", None), SERVICE_ERRORS_INNER, None)
    if inner is None:
        return behavior
    return types.MethodType(inner, behavior.__self__)  # type: ignore[attr-defined]


def _wrapped(handler: Handler, series: MethodSeries, in_flight: _InFlight) -> Handler:
    deserialize = handler.request_deserializer
    assert handler.unary_unary is not None
    behavior = _unmapped(handler.unary_unary)  # type: ignore[arg-type]
    handled = series.handled
    clock = time.perf_counter
    ok = grpc.StatusCode.OK

    def tolerant(data: bytes) -> Any:
        # grpcio decodes before any handler runs and answers a DecodeError as UNKNOWN
        # with a traceback at ERROR: what a client sends must never do that.
        assert deserialize is not None
        try:
            return deserialize(data)
        except DecodeError as exc:
            return _Undecodable(str(exc))

    async def served(request: Any, context: Context) -> Any:
        start = clock()
        series.started.inc()
        series.received.inc()
        code = grpc.StatusCode.UNKNOWN
        try:
            if request.__class__ is _Undecodable:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _undecodable(request))
            limit = in_flight.limit
            if limit is not None and in_flight.count >= limit:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _busy(limit))
            in_flight.count += 1
            try:
                response = await behavior(request, context)
            except ServiceError as exc:
                await abort(context, exc)
            finally:
                in_flight.count -= 1
            code = _code_of(context) or ok
            if code is ok:
                series.sent.inc()
            return response
        except grpc.aio.AbortError:
            code = _code_of(context) or grpc.StatusCode.UNKNOWN
            raise
        except BaseException as exc:
            code = (
                grpc.StatusCode.CANCELLED
                if isinstance(exc, asyncio.CancelledError)
                else grpc.StatusCode.UNKNOWN
            )
            raise
        finally:
            handled[code].inc()
            series.seconds.observe(clock() - start)

    return grpc.unary_unary_rpc_method_handler(
        served,
        request_deserializer=tolerant if deserialize is not None else None,
        response_serializer=handler.response_serializer,
    )


def _undecodable(request: _Undecodable) -> str:
    return (
        f"the request is not a valid protobuf message ({request.reason}); "
        "send the message the method expects, with UTF-8 strings and values "
        "nested less than 100 levels deep"
    )


def _busy(limit: int) -> str:
    return (
        f"the server is busy: {limit} calls in flight, its limit (GRPC_MAX_CONCURRENT_RPCS); "
        "retry with backoff"
    )


def _code_of(context: Context) -> grpc.StatusCode | None:
    code = context.code()
    if code is None:
        return None
    if isinstance(code, grpc.StatusCode):
        return code
    for candidate in grpc.StatusCode:  # some versions hand back the integer value
        if candidate.value[0] == code:
            return candidate
    return grpc.StatusCode.UNKNOWN
