"""Two caches in network namespaces of their own, partitioned by iptables (the kernel
drops every packet, sockets stay open): a forward answers UNAVAILABLE within its
deadline, and the lab leaves no namespace behind. A lab left by a run killed
before its clean-up is removed by the next one, whose /24 overlaps nothing on the
host."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from harness.nemesis.netns import NetnsLab, available, networks_in_use, pick_subnet
from harness.readiness import wait_ready
from harness.services import start_service
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.ownership.membership import preferred
from services.common.json_value import to_value
from tests.ownership.cluster import node_env

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

NODES = ("node-a", "node-b")


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    why = available()
    if why is not None:
        pytest.skip(why)
    with NetnsLab(NODES) as made:
        yield made
    assert made.exists() == [], "namespaces left behind"


async def _members(stub: cache_pb2_grpc.CacheServiceAsyncStub) -> set[str]:
    reply = await stub.ListOwners(cache_pb2.ListOwnersRequest(), timeout=5)
    return {m.node_id for m in reply.members if m.alive}


async def test_a_forward_across_a_kernel_partition_answers_unavailable_within_its_deadline(
    lab: NetnsLab, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = [
        start_service(
            "cache",
            node_env(db_url, node, CACHE_LISTEN=f"{lab.ip[node]}:0"),
            tmp_path,
            wait=False,
            label=node,
            prefix=lab.command(node),
        )
        for node in NODES
    ]
    channels: list[grpc.aio.Channel] = []
    try:
        for proc in procs:
            await asyncio.to_thread(wait_ready, proc, 60.0)
        channels = [grpc.aio.insecure_channel(p.grpc_address) for p in procs]
        a, b = (cache_pb2_grpc.CacheServiceStub(c) for c in channels)
        deadline = time.monotonic() + 30
        while await _members(a) != set(NODES) or await _members(b) != set(NODES):
            assert time.monotonic() < deadline, "the two nodes never saw each other"
            await asyncio.sleep(0.1)
        prefix = next(p for p in (f"b{i}" for i in range(200)) if preferred(p, NODES) == "node-b")
        key = f"{prefix}:k"
        request = cache_pb2.SetRequest(key=key, value=to_value(1), ttl_seconds=60)
        await b.Set(request, timeout=10)
        # Through node-a: a forward to node-b over the bridge, while it works.
        assert (await a.Get(cache_pb2.GetRequest(key=key), timeout=10)).found

        lab.partition("node-a", "node-b")
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await a.Get(cache_pb2.GetRequest(key=key), timeout=2.0)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE, refused.value.details()
        assert time.monotonic() - began < 2.0
        lab.heal()
    finally:
        for channel in channels:
            await channel.close(None)
        for proc in procs:
            await asyncio.to_thread(proc.stop)


def test_a_subnet_is_picked_clear_of_every_network_in_use() -> None:
    first = pick_subnet(random.Random(21), [])
    # The draw that came first is taken now, and so is a wider network around another.
    used = [first, ipaddress.IPv4Network("10.128.0.0/9")]
    picked = pick_subnet(random.Random(21), used)
    assert not any(picked.overlaps(u) for u in used), picked
    with pytest.raises(RuntimeError):
        pick_subnet(random.Random(21), [ipaddress.IPv4Network("10.0.0.0/8")], tries=50)


_KILLED = """
import os, signal
from harness.nemesis.netns import NetnsLab
lab = NetnsLab(["m"])
lab.setup()
print(lab.id, lab.host_ip, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, as when a run is killed
"""


def test_a_lab_left_by_a_killed_run_is_removed_by_the_next_and_cannot_shadow_it() -> None:
    why = available()
    if why is not None:
        pytest.skip(why)
    done = subprocess.run(
        [sys.executable, "-c", _KILLED], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -9, done.stderr
    dead_id, dead_host = done.stdout.split()
    dead = NetnsLab([])
    dead.id = dead_id
    try:
        assert len(dead.exists()) == 2, "the killed run left no namespace: nothing tested"
        left = ipaddress.IPv4Network(f"{dead_host}/24", strict=False)
        assert left in networks_in_use(), "the killed run left no route behind"
        with NetnsLab(["m"]) as lab:
            assert dead.exists() == [], "the next lab left the dead one's namespaces"
            assert not ipaddress.IPv4Network(f"{lab.host_ip}/24", strict=False).overlaps(left)
    finally:
        for ns in dead.exists():
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=30)
