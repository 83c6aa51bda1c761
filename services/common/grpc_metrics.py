"""gRPC server metrics with go-grpc-prometheus names, initialised at zero for every method."""

from __future__ import annotations

from collections.abc import Iterable

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


class MethodSeries:
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
