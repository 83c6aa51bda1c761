"""Real marketcache processes for tests, from the harness the benchmarks share (harness/)."""

from harness.process import REPO, ServiceProcess, run_to_end, stack_of
from harness.readiness import wait_http_ready, wait_ready
from harness.services import running, running_http, start_service

__all__ = [
    "REPO",
    "ServiceProcess",
    "run_to_end",
    "running",
    "running_http",
    "stack_of",
    "start_service",
    "wait_http_ready",
    "wait_ready",
]
