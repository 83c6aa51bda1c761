"""Real marketcache processes for tests, from the harness the benchmarks share (harness/)."""

from harness.process import REPO, ServiceProcess
from harness.readiness import wait_http_ready, wait_ready
from harness.services import running, running_http, start_service

__all__ = [
    "REPO",
    "ServiceProcess",
    "running",
    "running_http",
    "start_service",
    "wait_http_ready",
    "wait_ready",
]
