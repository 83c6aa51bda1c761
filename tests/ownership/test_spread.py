"""Three processes, thirty prefixes: one owner each, spread evenly, served from any node."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.ownership.cluster import Cluster, get, put
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NODES = ("node-1", "node-2", "node-3")
PREFIXES = [f"p{i:02d}" for i in range(30)]


async def test_each_prefix_has_exactly_one_owner_and_the_owners_spread(cluster: Cluster) -> None:
    await cluster.start(*NODES)
    await cluster.wait_members(NODES)
    # Everything through node-1: it forwards each prefix to its owner, which takes the lease.
    entry = cluster.stub("node-1")
    await asyncio.gather(*(put(entry, f"{p}:k", {"prefix": p}) for p in PREFIXES))

    owners = {p: await cluster.settled_owner(p, NODES) for p in PREFIXES}
    claims = {node: await cluster.held_by(node) for node in NODES}
    for node, held in claims.items():
        others = set().union(*(h for n, h in claims.items() if n != node))
        assert not held & others, f"{node} and another node both claim {held & others}"
    assert set().union(*claims.values()) >= set(PREFIXES)
    assert {p: o.node_id for p, o in owners.items()} == {
        p: next(n for n, held in claims.items() if p in held) for p in PREFIXES
    }
    shares = Counter(o.node_id for o in owners.values())
    assert set(shares) == set(NODES), shares
    assert max(shares.values()) <= 2 * len(PREFIXES) / len(NODES), shares
    assert all(o.epoch >= 1 for o in owners.values())

    # Any node answers for any prefix (forwarding), and redirect-free.
    for node in NODES:
        stub = cluster.stub(node)
        values = await asyncio.gather(*(get(stub, f"{p}:k") for p in PREFIXES))
        assert values == [{"prefix": p} for p in PREFIXES]
    forwarded = cluster.metric("node-1", "cache_forwarded_requests_total", method="Set")
    assert forwarded == sum(1 for o in owners.values() if o.node_id != "node-1")
    assert cluster.metric("node-1", "cache_members_alive") == len(NODES)
    held_metric = [cluster.metric(node, "cache_leases_held") for node in NODES]
    assert held_metric == [len(claims[node]) for node in NODES]


async def test_a_member_joining_takes_over_its_prefixes_and_one_leaving_hands_them_back(
    cluster: Cluster,
) -> None:
    await cluster.start("node-1", "node-2")
    await cluster.wait_members(["node-1", "node-2"])
    entry = cluster.stub("node-1")
    await asyncio.gather(*(put(entry, f"{p}:k", p) for p in PREFIXES))
    before = {p: await cluster.settled_owner(p, ["node-1", "node-2"]) for p in PREFIXES}

    await cluster.start("node-3")
    await cluster.wait_members(NODES)

    async def rebalanced() -> bool:
        if not await cluster.held_by("node-3"):
            return False
        for p in PREFIXES:
            if len({(await cluster.owner(n, p)).node_id for n in NODES}) != 1:
                return False
        return True

    await eventually(rebalanced, 30, "node-3 never took over its prefixes")
    after = {p: await cluster.settled_owner(p, NODES) for p in PREFIXES}
    moved = {p for p in PREFIXES if after[p].node_id != before[p].node_id}
    # Rendezvous hashing: only prefixes moving to the new member change hands.
    assert moved and all(after[p].node_id == "node-3" for p in moved)
    assert all(after[p].epoch == before[p].epoch + 1 for p in moved)
    assert all(after[p].epoch == before[p].epoch for p in PREFIXES if p not in moved)
    for p in PREFIXES:  # nothing written before the handover was lost
        assert await get(cluster.stub("node-3"), f"{p}:k") == p

    # SIGTERM: node-3 releases its leases; the others take them at once, not at expiry.
    await asyncio.to_thread(cluster.nodes["node-3"].terminate)
    del cluster.nodes["node-3"]
    for p in moved:
        owner = await cluster.settled_owner(p, ["node-1", "node-2"])
        assert owner.epoch == after[p].epoch + 1
        assert await get(cluster.stub("node-2"), f"{p}:k") == p
