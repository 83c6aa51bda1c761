"""The CacheService from Node.js: tests/interop/node/ run by `node --test` against a real cache.

The Node side (@grpc/grpc-js and @grpc/proto-loader, pinned in its package-lock.json,
installed by `make test`) loads the protos at run time from protos/ and the
googleapis files that `make gen` compiles against. Under CI=true a missing Node or
an uninstalled node_modules fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.node_client import NODE_DIR, missing, node_env
from tests.cache.harness import cache_env
from tests.support.processes import running

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

NODE_TESTS = 6


def require_node() -> str:
    """The node executable, with the client's packages installed; fail (CI) or skip."""
    problem = missing()
    node = shutil.which("node")
    if problem is None and node is not None:
        return node
    problem = problem or "node is not on PATH"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(problem)
    pytest.skip(problem)


def test_the_node_client_passes_its_suite(tmp_path: Path) -> None:
    node = require_node()
    with running("cache", cache_env(tmp_path), tmp_path) as cache:
        result = subprocess.run(
            [node, "--test", "--test-reporter=tap"],
            cwd=NODE_DIR,
            env=node_env(cache.grpc_address),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    # Every test ran and passed: a suite that found no tests must not look green.
    counts = dict(re.findall(r"^# (pass|fail|skipped|todo) (\d+)$", report, re.MULTILINE))
    assert counts == {"pass": str(NODE_TESTS), "fail": "0", "skipped": "0", "todo": "0"}, report
