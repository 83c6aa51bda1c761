"""Gateway HTTP metrics: requests by route template, method and status; latency by route."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

# Route label for requests that matched no route: never the raw path, whose
# values are unbounded and may carry keys.
UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"})
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """gateway_http_requests_total{route,method,code} and gateway_http_request_seconds."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gateway_http_requests_total",
            "HTTP requests answered by the gateway, by route template, method and status code.",
            ["route", "method", "code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "gateway_http_request_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=registry,
        )

    def initialize(self, routes: Iterable[tuple[str, str]]) -> None:
        """Create the latency series of every (route, method) at zero."""
        for route, method in routes:
            self.seconds.labels(route, method)

    def observe(self, route: str, method: str, code: int, seconds: float) -> None:
        """Count one answered request."""
        method = method if method in METHODS else "OTHER"
        self.requests.labels(route, method, str(code)).inc()
        self.seconds.labels(route, method).observe(seconds)
