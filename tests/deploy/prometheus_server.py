"""A real Prometheus server on loopback for end-to-end tests, and its HTTP API."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.conftest import free_port
from tests.deploy.manifests import DEPLOY, require_tool

T = TypeVar("T")
LOCAL_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"


def local_config(targets: Mapping[str, Sequence[str]], interval: str = "1s") -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with each job re-targeted and a short interval.

    Job names, rule files and everything else stay as committed: that is what is tested.
    """
    config: dict[str, Any] = yaml.safe_load(LOCAL_CONFIG.read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [str(LOCAL_CONFIG.parent / name) for name in config["rule_files"]]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": list(targets.get(job["job_name"], []))}]
    return config


class PrometheusApi:
    """Queries to a running Prometheus's /api/v1."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant vector query's result."""
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", f"{expr}: {data['resultType']}"
        result: list[dict[str, Any]] = data["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        """The single value of a one-series query, or None when it has no series."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} has {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@contextmanager
def running_prometheus(config: Mapping[str, Any], workdir: Path) -> Iterator[PrometheusApi]:
    """Debian's prometheus with `config` on a free loopback port, stopped afterwards."""
    binary = require_tool("prometheus", "apt-get install prometheus (make deps)")
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(dict(config)))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = PrometheusApi(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while not api.ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"prometheus did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield api
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
