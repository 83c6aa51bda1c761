"""Build deploy/Dockerfile with podman, with no registry: `make image` and the image test.

No container registry is reachable where this project is developed, so the
Dockerfile's `python:3.11-slim-bookworm` base is replaced (through its
PYTHON_IMAGE argument; the FROM stays the default for everyone else) by an
equivalent built from Debian packages with mmdebstrap and `podman import`ed.
That base is tagged with a hash of what went into it and built only when
missing: `podman rmi` it to pick up Debian's updates.

Podman's settings live in a directory the caller gives (CONTAINERS_CONF), never
in /etc: crun refuses cgroups in hybrid mode, so runc runs the containers with
cgroupfs and no default ulimits, always on the host network. pip inside the
build reaches the package index only with the host's pip configuration and CA
certificates, so both are mounted in when they exist (a machine without them
builds as usual).

    python -m harness.image --state-dir .image [--tag marketcache:0.1.0]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.process import REPO

DOCKERFILE = REPO / "deploy" / "Dockerfile"
SUITE = "bookworm"
# What python:3.11-slim-bookworm gives the Dockerfile: an interpreter, venv,
# `python` on PATH and CA certificates; passwd for its groupadd and useradd.
BASE_PACKAGES = ("passwd", "python3", "python3-venv", "python-is-python3", "ca-certificates")
# The environment the official python images set, which an imported tarball lacks.
BASE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
CONTAINERS_CONF = """\
# Podman settings for marketcache's image build and test (written by harness/image.py).
[containers]
# The host's ulimits cannot all be raised inside runc's container here.
default_ulimits = []

[engine]
# crun fails with "cgroups in hybrid mode not supported"; runc with cgroupfs works.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def project_version() -> str:
    """The version in pyproject.toml (the image's tag)."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def default_tag() -> str:
    """marketcache:<version>."""
    return f"marketcache:{project_version()}"


def podman_env(state_dir: Path) -> dict[str, str]:
    """The environment for every podman call: CONTAINERS_CONF in `state_dir` (written here)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    conf = state_dir / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(
    args: Sequence[str], env: Mapping[str, str], *, timeout: float = 600.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `podman args...`; raise with its output when it fails and `check`."""
    result = subprocess.run(
        ["podman", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"podman {shlex.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def base_tag() -> str:
    """The base image's tag: it changes when what goes into it changes."""
    recipe = "\n".join([SUITE, *BASE_PACKAGES, *BASE_CHANGES])
    return f"localhost/marketcache-base:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def ensure_base(state_dir: Path, env: Mapping[str, str], log: bool = True) -> str:
    """The Debian base image (mmdebstrap, then podman import), built only when missing."""
    tag = base_tag()
    if podman(["image", "exists", tag], env, check=False).returncode == 0:
        return tag
    tarball = state_dir / "base.tar"
    if log:
        print(f"building {tag} with mmdebstrap ({', '.join(BASE_PACKAGES)})", flush=True)
    try:
        subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=apt",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(tarball),
            ],
            check=True,
            timeout=1200,
        )
        changes = [arg for change in BASE_CHANGES for arg in ("--change", change)]
        podman(["import", *changes, str(tarball), tag], env)
    finally:
        tarball.unlink(missing_ok=True)
    return tag


def host_pip_config() -> dict[str, str]:
    """The host's effective pip settings (its files and PIP_* variables), `{option: value}`."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    files: dict[str, str] = {}
    variables: dict[str, str] = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"([^.]*)\.([\w-]+)='(.*)'", line.strip())
        if match is None:
            continue
        section, option, value = match.groups()
        if section == ":env:":
            variables[option] = value
        elif section in ("global", "install"):
            files[option] = value
    # The variables win over the files, as they do for pip itself.
    return {**files, **variables}


def pip_mounts(state_dir: Path, settings: Mapping[str, str]) -> list[str]:
    """`--volume` arguments giving the build the host's pip settings and what they name.

    Empty when the host has no pip configuration and no CA bundle: the build
    then reaches the index as it would anywhere else.
    """
    volumes: list[str] = []
    if settings:
        conf = state_dir / "pip.conf"
        conf.write_text(
            "[global]\n" + "".join(f"{option} = {value}\n" for option, value in settings.items())
        )
        volumes.append(f"{conf}:/etc/pip.conf:ro")
    named: set[Path] = {CA_BUNDLE} if CA_BUNDLE.exists() else set()
    for value in settings.values():
        for word in value.split():
            path = Path(word.removeprefix("file://"))
            if path.is_absolute() and path.exists():
                # A local index (.../simple) links to its files beside it: mount both.
                named.add(path.parent if path.name == "simple" else path)
    for path in sorted(named):
        volumes.append(f"{path}:{path}:ro")
    return [arg for volume in volumes for arg in ("--volume", volume)]


def build(state_dir: Path, tag: str | None = None, *, log: bool = True) -> str:
    """Build deploy/Dockerfile on the Debian base and tag it; the tag."""
    state_dir = state_dir.resolve()
    env = podman_env(state_dir)
    tag = tag or default_tag()
    base = ensure_base(state_dir, env, log)
    replaced = _image_id(tag, env)
    args = [
        "build",
        "--network=host",
        "--layers",
        "--file",
        str(DOCKERFILE),
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        *pip_mounts(state_dir, host_pip_config()),
        "--tag",
        tag,
        str(REPO),
    ]
    if log:
        print("podman " + shlex.join(args), flush=True)
        subprocess.run(["podman", *args], env=env, check=True, timeout=1800)
    else:
        podman(args, env, timeout=1800)
    if replaced is not None and replaced != _image_id(tag, env):
        # The image the tag left behind: each would keep a copy of the environment.
        # (Its build cache stays; `podman image prune` reclaims the rest.)
        podman(["rmi", replaced], env, check=False)
    return tag


def _image_id(tag: str, env: Mapping[str, str]) -> str | None:
    """The id of the image `tag` names, or None."""
    found = podman(["image", "inspect", "--format", "{{.Id}}", tag], env, check=False)
    return found.stdout.strip() or None if found.returncode == 0 else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.image", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True, help="podman settings go here")
    parser.add_argument("--tag", default=None, help="default marketcache:<pyproject version>")
    options = parser.parse_args(argv)
    tag = build(options.state_dir, options.tag)
    print(f"built {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
