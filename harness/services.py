"""Start a marketcache service (`python -m services.<name>`) and wait until it serves."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
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
    http: bool = False,
    prefix: Sequence[str] = (),
) -> ServiceProcess:
    """Start `python -m services.<name>` with `env` over a clean base environment.

    The process writes MARKETCACHE_READY_FILE (its bound addresses) once it
    serves; with `wait`, this returns only after that and a SERVING health check,
    or for an `http` process (the gateway, ready file `{"http": "host:port"}`)
    GET /healthz answering 200.
    """
    proc = spawn([f"services.{name}"], env, workdir, label or name, prefix)
    if wait:
        (wait_http_ready if http else wait_ready)(proc, timeout=timeout)
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


def running_http(
    name: str, env: Mapping[str, str], workdir: Path, **kwargs: object
) -> AbstractContextManager[ServiceProcess]:
    """An HTTP service process for the duration of a `with` block, always cleaned up."""
    return running(name, env, workdir, http=True, **kwargs)
