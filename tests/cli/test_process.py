"""The installed `marketcache` script as a real subprocess against real cache processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from marketcache.v1 import cache_pb2
from services.cache.ownership.membership import preferred
from tests.cache.harness import ADMIN_TOKEN, cache_env
from tests.conftest import free_port
from tests.ownership.cluster import ADMIN_TOKEN as CLUSTER_TOKEN
from tests.ownership.cluster import Cluster
from tests.support.processes import running

_SCRIPT = Path(sys.executable).with_name("marketcache")
# The console script `make` installs; `python -m services.cli` is the same program.
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "services.cli"]


def marketcache(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_script_against_a_cache_process(tmp_path: Path) -> None:
    with running("cache", cache_env(tmp_path), tmp_path) as cache:
        at = ["--addr", cache.grpc_address, "--token", ADMIN_TOKEN]
        assert marketcache(*at, "set", "stock:AAPL", '{"p": 1}').returncode == 0
        got = marketcache(*at, "get", "stock:AAPL")
        assert (got.returncode, json.loads(got.stdout)) == (0, {"p": 1})
        miss = marketcache(*at, "get", "stock:NONE")
        assert (miss.returncode, miss.stdout, miss.stderr) == (1, "", "")
        bad = marketcache(*at, "set", "stock:AAPL")  # JSON missing
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
        assert "Missing argument 'JSON'" in bad.stderr
        refused = marketcache(*at, "get", "no prefix")
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
        # Import from stdin ("-"), then export everything back.
        lines = "".join(
            json.dumps({"key": f"news:{i}", "value": [i], "ttlSeconds": 500}) + "\n"
            for i in range(3)
        )
        assert marketcache(*at, "import", "-", stdin=lines).returncode == 0
        exported = marketcache(*at, "export")
        keys = [json.loads(line)["key"] for line in exported.stdout.splitlines()]
        assert keys == ["news:0", "news:1", "news:2", "stock:AAPL"]
    gone = marketcache("--addr", f"127.0.0.1:{free_port()}", "--timeout", "1", "get", "stock:A")
    assert gone.returncode == 3 and len(gone.stderr.strip().splitlines()) == 1
    assert "unreachable" in gone.stderr
    assert marketcache("--addr", "nonsense", "health").returncode == 2


NODES = ("n1", "n2", "n3")


async def test_the_script_against_three_cache_processes(tmp_path: Path) -> None:
    cluster = Cluster(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
    try:
        await cluster.start(*NODES)
        await cluster.wait_members(NODES)
        # One prefix preferred by each node: the CLI talks to n1 only.
        prefixes = [
            next(p for p in (f"{n}p{i}" for i in range(200)) if preferred(p, NODES) == n)
            for n in NODES
        ]
        at = ["--addr", cluster.nodes["n1"].grpc_address, "--token", CLUSTER_TOKEN]

        def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return marketcache(*at, *args, stdin=stdin)

        for prefix in prefixes:
            for i in range(3):
                result = await asyncio.to_thread(run, "set", f"{prefix}:k{i}", str(i))
                assert result.returncode == 0, result.stderr
        for prefix in prefixes:
            scanned = await asyncio.to_thread(run, "scan", prefix, "--count", "2")
            assert scanned.stdout.split() == [f"{prefix}:k{i}" for i in range(3)], scanned.stderr
        mget = await asyncio.to_thread(run, "mget", *(f"{p}:k1" for p in prefixes))
        assert [json.loads(line) for line in mget.stdout.splitlines()] == [1, 1, 1]
        owners = json.loads((await asyncio.to_thread(run, "owners")).stdout)
        assert sorted(m["nodeId"] for m in owners["members"]) == list(NODES)
        held = {o["prefix"]: o["nodeId"] for o in owners["owners"]}
        assert {held.get(p) for p in prefixes} <= set(NODES)
        dump = (await asyncio.to_thread(run, "export")).stdout
        assert len(dump.splitlines()) == 9
        for prefix in prefixes:
            cleared = await cluster.stub("n1").Clear(
                cache_pb2.ClearRequest(prefix=prefix),
                metadata=(("authorization", f"Bearer {CLUSTER_TOKEN}"),),
            )
            assert cleared.deleted == 3
        assert (await asyncio.to_thread(run, "import", "-", stdin=dump)).returncode == 0
        again = (await asyncio.to_thread(run, "export")).stdout
        assert [json.loads(x)["key"] for x in again.splitlines()] == [
            json.loads(x)["key"] for x in dump.splitlines()
        ]
    finally:
        await cluster.close()
