"""The Node.js client in tests/interop/node: where it is, what it reads, whether it can run.

Shared by its test (tests/interop/test_node.py) and its benchmark row (bench/node_client.py).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from harness.process import REPO

NODE_DIR = REPO / "tests" / "interop" / "node"


def googleapis_dir() -> Path:
    """Where google/api/*.proto and google/rpc/*.proto lie: the googleapis-common-protos
    package that `make gen` compiles against."""
    spec = importlib.util.find_spec("google.api")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("googleapis-common-protos is not installed (a dependency)")
    return Path(next(iter(spec.submodule_search_locations))).parent.parent


def missing() -> str | None:
    """Why the Node client cannot run here (no node, no node_modules), or None."""
    if shutil.which("node") is None:
        return "node is not installed: `make deps` installs Debian's nodejs and npm"
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        return f"{NODE_DIR}/node_modules is missing: `make test` runs npm ci there"
    return None


def node_env(cache_address: str, **extra: str) -> dict[str, str]:
    """The Node client's environment: where the cache listens and where the protos are."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "MARKETCACHE_CACHE_ADDR": cache_address,
        "MARKETCACHE_PROTO_PATH": os.pathsep.join([str(REPO / "protos"), str(googleapis_dir())]),
        **extra,
    }
