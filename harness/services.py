"""Start a marketcache service (`python -m services.<name>`) and wait until it serves."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from harness.process import ServiceProcess, spawn
from harness.readiness import wait_http_ready, wait_ready


def start_service(
    name: str,
    env: Mapping[str, str],
    workdir: Path,
    *,
    wait: bool = True,
    timeout: float = 30.0,
    label: str | None = None,
) -> ServiceProcess:
    """Start `python -m services.<name>` with `env` over a clean base environment.

    The process writes MARKETCACHE_READY_FILE (its bound addresses) once it
    serves; with `wait`, this returns only after that and a SERVING health check.
    """
    proc = spawn([f"services.{name}"], env, workdir, label or name)
    if wait:
        wait_ready(proc, timeout=timeout)
    return proc


@contextmanager
def running(
    name: str, env: Mapping[str, str], workdir: Path, **kwargs: object
) -> Iterator[ServiceProcess]:
    """A service process for the duration of a `with` block, always cleaned up."""
    proc = start_service(name, env, workdir, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        proc.stop()


def start_http_service(
    name: str,
    env: Mapping[str, str],
    workdir: Path,
    *,
    wait: bool = True,
    timeout: float = 30.0,
    label: str | None = None,
) -> ServiceProcess:
    """Start an HTTP process (`python -m services.gateway`) like start_service.

    Its ready file is `{"http": "host:port", "pid": n}`; with `wait`, this returns
    once that file exists and GET /healthz answers 200.
    """
    proc = start_service(name, env, workdir, wait=False, timeout=timeout, label=label)
    if wait:
        wait_http_ready(proc, timeout=timeout)
    return proc


@contextmanager
def running_http(
    name: str, env: Mapping[str, str], workdir: Path, **kwargs: object
) -> Iterator[ServiceProcess]:
    """An HTTP service process for the duration of a `with` block, always cleaned up."""
    proc = start_http_service(name, env, workdir, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        proc.stop()
