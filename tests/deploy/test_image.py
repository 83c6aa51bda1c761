"""The image, built with podman and run: the four processes from it on the host network.

`harness.image` builds deploy/Dockerfile (as `make image` does) with podman's
settings in this test's temporary directory; the Debian base and the build's
layers stay in podman's store, so a second run rebuilds only what changed.
Each process runs in its own container, read-only, on ports the kernel picks
(port 0, read back from its ready file in its volume). The gateway's /readyz
asks every backend, so market_data and sector run too.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from harness.image import build, podman, podman_env
from harness.readiness import wait_serving
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.json_value import from_value, to_value
from tests.deploy.manifests import require_tool

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

UID = 10001
DATA_DIR = "/var/lib/marketcache"
# terminationGracePeriodSeconds of every workload in deploy/k8s/base.
GRACE_SECONDS = 30.0
# Files that would mean a compiler or a pip cache made it into the runtime stage.
IMAGE_AUDIT = """
import json, os, shutil
compilers = [c for c in ("cc", "gcc", "g++", "c++", "clang", "tcc") if shutil.which(c)]
caches = []
for top, dirs, _ in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev")]
    if os.path.basename(top) == "pip" and os.path.basename(os.path.dirname(top)) == ".cache":
        caches.append(top)
print(json.dumps({"compilers": compilers, "pip_caches": caches}))
"""


@dataclass
class Image:
    """A built image and the podman environment (settings in a temporary directory)."""

    tag: str
    env: dict[str, str]
    started: list[str] = field(default_factory=list)

    def podman(self, *args: str, timeout: float = 120.0) -> str:
        return podman(list(args), self.env, timeout=timeout).stdout

    def run(self, module: str, volume: Path, env: dict[str, str]) -> Container:
        """Start `python -m services.<module>` detached, read-only, `volume` as its data dir."""
        volume.mkdir(parents=True)
        # The image's user owns its data directory, as a Kubernetes fsGroup would make it.
        subprocess.run(["chown", f"{UID}:{UID}", str(volume)], check=True, timeout=30)
        name = f"marketcache-test-{module}-{secrets.token_hex(4)}"
        settings = {"MARKETCACHE_READY_FILE": f"{DATA_DIR}/ready.json", **env}
        self.started.append(name)
        self.podman(
            "run",
            "--detach",
            "--name",
            name,
            "--network=host",
            "--read-only",
            "--volume",
            f"{volume}:{DATA_DIR}",
            *[arg for item in settings.items() for arg in ("--env", "=".join(item))],
            self.tag,
            "python",
            "-m",
            f"services.{module}",
        )
        return Container(self, name, volume)


@dataclass
class Container:
    """One detached container of the image."""

    image: Image
    name: str
    volume: Path

    def inspect(self, template: str) -> str:
        return self.image.podman("inspect", "--format", template, self.name).strip()

    def logs(self) -> str:
        result = podman(["logs", self.name], self.image.env, check=False)
        return result.stdout + result.stderr

    def ready(self, timeout: float = 90.0) -> dict[str, Any]:
        """Its ready file once written (fail with its log if it exits first)."""
        path = self.volume / "ready.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.inspect("{{.State.Status}}") != "running":
                pytest.fail(f"{self.name} exited before ready:\n{self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} not ready within {timeout}s:\n{self.logs()}")
            time.sleep(0.1)
        info: dict[str, Any] = json.loads(path.read_text())
        return info

    def host_pid(self) -> int:
        return int(self.inspect("{{.State.Pid}}"))

    def stop(self) -> tuple[int, float]:
        """SIGTERM its process; its exit code and the seconds it took to exit."""
        started = time.monotonic()
        self.image.podman("kill", "--signal", "TERM", self.name)
        code = self.image.podman("wait", self.name, timeout=GRACE_SECONDS + 30).strip()
        return int(code), time.monotonic() - started


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    for tool, package in (("podman", "podman"), ("runc", "runc"), ("mmdebstrap", "mmdebstrap")):
        require_tool(tool, f"`make deps` installs Debian's {package}")
    state = tmp_path_factory.mktemp("podman")
    built = Image(build(state, log=False), podman_env(state))
    yield built
    for name in built.started:
        podman(["rm", "--force", "--time", "0", name], built.env, check=False)


def _http(url: str, method: str = "GET", body: Any = None, token: str = "") -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _wait_readyz(url: str, gateway: Container, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = _http(f"{url}/readyz")
        except (urllib.error.URLError, OSError) as err:
            status, body = 0, str(err)
        if status == 200:
            return dict(body)
        if time.monotonic() > deadline:
            pytest.fail(f"/readyz answered {status} {body} for {timeout}s:\n{gateway.logs()}")
        time.sleep(0.1)


def _uid_and_root(pid: int) -> tuple[int, list[str]]:
    """The process's effective uid and its root mount's options, seen from the host."""
    status = Path(f"/proc/{pid}/status").read_text()
    (uids,) = [line for line in status.splitlines() if line.startswith("Uid:")]
    effective = int(uids.split()[2])
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return effective, fields[5].split(",")
    raise AssertionError(f"no root mount in /proc/{pid}/mountinfo")


def test_the_image_runs_the_system_read_only_as_its_user(image: Image, tmp_path: Path) -> None:
    token = secrets.token_hex(16)
    wired = {"ADMIN_TOKEN": token}
    addresses: dict[str, str] = {}
    containers: list[Container] = []
    # Each process on ports the kernel picks; the next one is told where the last listens.
    for module, prefix in (
        ("cache", "CACHE"),
        ("market_data", "MARKET_DATA"),
        ("sector", "SECTOR"),
    ):
        listen = {f"{prefix}_LISTEN": "127.0.0.1:0", f"{prefix}_METRICS_LISTEN": "127.0.0.1:0"}
        container = image.run(module, tmp_path / module, {**wired, **listen})
        containers.append(container)
        addresses[module] = wired[f"{prefix}_ADDR"] = str(container.ready()["grpc"])
    gateway = image.run("gateway", tmp_path / "gateway", {**wired, "GATEWAY_LISTEN": "127.0.0.1:0"})
    containers.append(gateway)
    url = f"http://{gateway.ready()['http']}"
    cache_addr = addresses["cache"]

    # SERVING on grpc.health.v1 and /readyz: every backend answers through the gateway.
    for address in addresses.values():
        wait_serving(address, 30.0)
    ready = _wait_readyz(url, gateway)
    assert {b["status"] for b in ready["backends"].values()} == {"SERVING"}, ready

    # A Set over REST read back over gRPC, and the reverse.
    status, stored = _http(
        f"{url}/api/v1/cache/keys/image:rest", "PUT", {"value": {"n": 1}, "ttlSeconds": 60}, token
    )
    assert status == 200, stored
    with grpc.insecure_channel(cache_addr) as channel:
        stub = cache_pb2_grpc.CacheServiceStub(channel)
        got = stub.Get(cache_pb2.GetRequest(key="image:rest"), timeout=10)
        assert got.found and from_value(got.value) == {"n": 1}
        stub.Set(cache_pb2.SetRequest(key="image:grpc", value=to_value([1, 2]), ttl_seconds=60))
    status, read = _http(f"{url}/api/v1/cache/keys/image:grpc")
    assert status == 200 and read["found"] is True and read["value"] == [1, 2], read
    assert (tmp_path / "cache" / "cache.db").exists(), "SQLite lives in the volume"

    # Each process runs as the image's user on a read-only root filesystem.
    for container in containers:
        uid, options = _uid_and_root(container.host_pid())
        assert uid == UID, f"{container.name} runs as uid {uid}"
        assert "ro" in options, f"{container.name}'s root is mounted {options}"
    probe = podman(
        ["exec", containers[0].name, "python", "-c", "open('/probe', 'w')"], image.env, check=False
    )
    assert probe.returncode != 0 and "Read-only file system" in probe.stderr, probe.stderr

    # SIGTERM: each drains and exits 0 within the grace period, front to back.
    for container in reversed(containers):
        code, seconds = container.stop()
        assert code == 0, f"{container.name} exited {code}:\n{container.logs()}"
        assert seconds < GRACE_SECONDS, f"{container.name} took {seconds:.1f}s after SIGTERM"


def test_the_image_carries_no_compiler_and_no_pip_cache(image: Image, tmp_path: Path) -> None:
    def audit(*mounts: str) -> dict[str, list[str]]:
        volumes = [arg for mount in mounts for arg in ("--volume", mount)]
        found: dict[str, list[str]] = json.loads(
            image.podman(
                "run", "--rm", "--network=host", "--user", "0", *volumes, image.tag,
                "python", "-c", IMAGE_AUDIT,
            )
        )  # fmt: skip
        return found

    assert audit() == {"compilers": [], "pip_caches": []}
    # The audit sees what it looks for: a compiler on PATH and a pip cache, mounted in.
    fake_gcc = tmp_path / "gcc"
    fake_gcc.write_text("#!/bin/sh\n")
    fake_gcc.chmod(0o755)
    (tmp_path / "pip").mkdir()
    planted = audit(f"{fake_gcc}:/usr/local/bin/gcc:ro", f"{tmp_path / 'pip'}:/root/.cache/pip:ro")
    assert planted == {"compilers": ["gcc"], "pip_caches": ["/root/.cache/pip"]}
