"""`--prometheus`: Debian's prometheus with deploy/prometheus/prometheus.yml, re-targeted."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
SOURCE_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DEFAULT_PORT = 9090


def pick_port(requested: int) -> int:
    """The requested port, else 9090 when free, else any free port."""
    if requested:
        return requested
    for port in (DEFAULT_PORT, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port for prometheus")


def write_config(targets: Mapping[str, Sequence[str]], directory: Path) -> Path:
    """The deploy config with each job's targets set to where this run listens.

    Job names (and so the alert rules and dashboard) stay the deploy engineer's;
    only the static targets change, because a run may use other ports.
    """
    try:
        import yaml
    except ImportError:  # a runtime-only install: the file as it is (default ports)
        return SOURCE_CONFIG
    config = yaml.safe_load(SOURCE_CONFIG.read_text())
    for job in config.get("scrape_configs", []):
        if job.get("job_name") in targets:
            job["static_configs"] = [{"targets": list(targets[job["job_name"]])}]
    # Rule files are relative to the config file; ours lives elsewhere.
    config["rule_files"] = [str(SOURCE_CONFIG.parent / r) for r in config.get("rule_files", [])]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def argv(binary: str, config: Path, storage: Path, port: int) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]


async def is_ready(session: aiohttp.ClientSession, url: str) -> bool:
    """Prometheus's own readiness endpoint answers 200."""
    try:
        async with session.get(f"{url}/-/ready") as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False
