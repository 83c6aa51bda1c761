"""gRPC server metrics with go-grpc-prometheus names, initialised at zero for every method."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import CollectorRegistry, Counter, Histogram

# The buckets go-grpc-prometheus uses by default (prometheus.DefBuckets), plus
# sub-millisecond ones because a cache hit lives there.
_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

_Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class ServerMetrics:
    """go-grpc-prometheus server metrics: started, handled, messages, handling seconds."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.started = Counter(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            labels,
            registry=registry,
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            [*labels, "grpc_code"],
            registry=registry,
        )
        self.received = Counter(
            "grpc_server_msg_received_total",
            "Total number of RPC stream messages received on the server.",
            labels,
            registry=registry,
        )
        self.sent = Counter(
            "grpc_server_msg_sent_total",
            "Total number of gRPC stream messages sent by the server.",
            labels,
            registry=registry,
        )
        self.seconds = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had "
            "been application-level handled by the server.",
            labels,
            buckets=_BUCKETS,
            registry=registry,
        )

    def initialize(self, services: Iterable[ServiceDescriptor]) -> None:
        """Create every series at zero so rates and absent() work from the first scrape."""
        for service in services:
            for method in service.methods:
                kind = _grpc_type(method.client_streaming, method.server_streaming)
                labels = (kind, service.full_name, method.name)
                self.started.labels(*labels)
                self.received.labels(*labels)
                self.sent.labels(*labels)
                self.seconds.labels(*labels)
                for code in grpc.StatusCode:
                    self.handled.labels(*labels, code_label(code))


def code_label(code: grpc.StatusCode) -> str:
    """The grpc_code label as go-grpc-prometheus spells it (Go codes.Code.String())."""
    if code is grpc.StatusCode.OK:
        return "OK"
    return "".join(part.capitalize() for part in code.name.split("_"))


def _grpc_type(client_streaming: bool, server_streaming: bool) -> str:
    if client_streaming and server_streaming:
        return "bidi_stream"
    if client_streaming:
        return "client_stream"
    if server_streaming:
        return "server_stream"
    return "unary"


class _MethodSeries:
    """The label children of one unary method, resolved once (labels() is not free)."""

    __slots__ = ("handled", "metrics", "received", "seconds", "sent", "started")

    def __init__(self, metrics: ServerMetrics, service: str, method: str) -> None:
        labels = ("unary", service, method)
        self.metrics = metrics
        self.started = metrics.started.labels(*labels)
        self.received = metrics.received.labels(*labels)
        self.sent = metrics.sent.labels(*labels)
        self.seconds = metrics.seconds.labels(*labels)
        self.handled = {
            code: metrics.handled.labels(*labels, code_label(code)) for code in grpc.StatusCode
        }


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Counts and times every unary RPC; streaming RPCs are counted as started and handled."""

    def __init__(self, metrics: ServerMetrics, max_concurrent: int | None = None) -> None:
        self._metrics = metrics
        self._series: dict[str, _MethodSeries] = {}
        # #12: the concurrency limit is enforced here, not by grpcio's
        # maximum_concurrent_rpcs, whose refusals never reach an interceptor
        # (uncounted); a refusal here is RESOURCE_EXHAUSTED and counted.
        self._limit = max_concurrent
        self._in_flight = 0

    def _series_for(self, full_method: str) -> _MethodSeries:
        series = self._series.get(full_method)
        if series is None:
            service, _, method = full_method.lstrip("/").rpartition("/")
            series = _MethodSeries(self._metrics, service, method)
            self._series[full_method] = series
        return series

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        series = self._series_for(handler_call_details.method)
        behavior: _Behavior = handler.unary_unary  # type: ignore[assignment]

        async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = time.perf_counter()
            series.started.inc()
            series.received.inc()
            code = grpc.StatusCode.UNKNOWN
            limit = self._limit
            try:
                if limit is not None and self._in_flight >= limit:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _busy(limit))
                self._in_flight += 1
                try:
                    response = await behavior(request, context)
                finally:
                    self._in_flight -= 1
                code = _code_of(context) or grpc.StatusCode.OK
                if code is grpc.StatusCode.OK:
                    series.sent.inc()
                return response
            except grpc.aio.AbortError:
                code = _code_of(context) or grpc.StatusCode.UNKNOWN
                raise
            except BaseException as exc:
                code = (
                    grpc.StatusCode.CANCELLED
                    if isinstance(exc, _cancelled_types())
                    else grpc.StatusCode.UNKNOWN
                )
                raise
            finally:
                series.handled[code].inc()
                series.seconds.observe(time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _busy(limit: int) -> str:
    return (
        f"the server is busy: {limit} calls in flight, its limit (GRPC_MAX_CONCURRENT_RPCS); "
        "retry with backoff"
    )


def _code_of(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode | None:
    code = context.code()
    if code is None:
        return None
    if isinstance(code, grpc.StatusCode):
        return code
    for candidate in grpc.StatusCode:  # some versions hand back the integer value
        if candidate.value[0] == code:
            return candidate
    return grpc.StatusCode.UNKNOWN


def _cancelled_types() -> tuple[type[BaseException], ...]:
    import asyncio

    return (asyncio.CancelledError,)
