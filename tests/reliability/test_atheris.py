"""atheris (libFuzzer, coverage-guided) on the cache key validator and the gateway path matcher.

Each target runs as its own process with a fixed seed and run count; a crash
(an undocumented exception or a broken invariant) makes libFuzzer exit
non-zero and leave a reproducer under tmp_path. Skipped when atheris is not
installed (it is not a declared dependency yet).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.records import nothing_lost, record
from tests.support.processes import REPO

pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")

pytestmark = [pytest.mark.slow]

RUNS = int(os.environ.get("ATHERIS_RUNS", "100000"))
WHAT = {
    "keys": "KeyRules.prefix_of / check_prefix / prefix_or_key, prefix depths 1-3",
    "paths": "PathTemplate.match on fixed and fuzzed templates, and Router.resolve",
}


@pytest.mark.parametrize("target", sorted(WHAT))
def test_atheris_finds_no_crash(target: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability.atheris_targets",
            target,
            f"-runs={RUNS}",
            "-seed=1",
            "-max_len=512",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    output = result.stdout + result.stderr
    done = re.search(r"Done (\d+) runs in (\d+) second", output)
    coverage = re.findall(r"cov: (\d+) ft: (\d+)", output)
    crashes = sorted(p.name for p in tmp_path.iterdir())
    record(
        f"atheris: {target}",
        tried=f"coverage-guided libFuzzer inputs to {WHAT[target]}, checking invariants",
        cases=f"{done.group(1) if done else '?'} runs (seed 1)",
        lost=nothing_lost(len(crashes) + (result.returncode != 0), "crashes"),
        figures={
            "edges covered / features": "/".join(coverage[-1]) if coverage else None,
            "seconds": int(done.group(2)) if done else None,
            "crash files": crashes,
        },
        passed=result.returncode == 0 and not crashes,
    )
    assert result.returncode == 0, output[-4000:]
    assert not crashes, crashes
    assert done is not None and int(done.group(1)) >= RUNS, output[-2000:]
