"""Several real cache processes on one shared database, and what the tests ask of them."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.common.channel_pool import ChannelPool
from tests.support.cache_calls import MISSING, get, put
from tests.support.polling import eventually

# Re-exported: the ownership tests import them from here.
__all__ = ["ADMIN_TOKEN", "LEASE_SECONDS", "MISSING", "Cluster", "get", "node_env", "put"]
from tests.support.processes import ServiceProcess, start_service, wait_ready

# Short leases keep the takeover tests quick; the protocol scales with the lease.
LEASE_SECONDS = 2.0
ADMIN_TOKEN = "ownership-admin"


def node_env(db_url: str, node_id: str, **extra: str) -> dict[str, str]:
    """The environment of one cache node on ephemeral ports."""
    env = {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": db_url,
        "CACHE_NODE_ID": node_id,
        "CACHE_LEASE_SECONDS": str(LEASE_SECONDS),
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "GRPC_DRAIN_SECONDS": "2",
    }
    env.update(extra)
    return env


class Cluster:
    """Cache processes sharing `db_url`; stubs and metrics per node id."""

    def __init__(self, db_url: str, workdir: Path, **extra_env: str) -> None:
        self.db_url = db_url
        self.workdir = workdir
        self.extra_env = extra_env
        self.nodes: dict[str, ServiceProcess] = {}
        self._stubs: ChannelPool[cache_pb2_grpc.CacheServiceAsyncStub] = ChannelPool(
            cache_pb2_grpc.CacheServiceStub, None
        )

    async def start(self, *node_ids: str, **env: str) -> None:
        """Start the nodes together and wait until every one serves."""
        procs = [
            start_service(
                "cache",
                node_env(self.db_url, node, **{**self.extra_env, **env}),
                self.workdir,
                wait=False,
                label=node,
            )
            for node in node_ids
        ]
        self.nodes.update(zip(node_ids, procs, strict=True))
        for proc in procs:
            await asyncio.to_thread(wait_ready, proc, 60.0)

    async def restart(self, node: str) -> None:
        """Start `node` again (after it died) on the same gRPC address."""
        old = self.nodes[node]
        env = node_env(self.db_url, node, **{**self.extra_env, "CACHE_LISTEN": old.grpc_address})
        proc = start_service("cache", env, self.workdir, wait=False, label=f"{node}-again")
        self.nodes[node] = proc
        await asyncio.to_thread(wait_ready, proc, 60.0)

    def stub(self, node: str) -> cache_pb2_grpc.CacheServiceAsyncStub:
        """A stub of `node` (one channel per node, reopened after a restart)."""
        return self._stubs.stub(self.nodes[node].grpc_address)

    def metric(self, node: str, name: str, **labels: str) -> float:
        """A sample of `node`'s /metrics (0 when absent)."""
        url = f"http://127.0.0.1:{self.nodes[node].metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    async def close(self) -> None:
        """Close the channels and stop every node."""
        await self._stubs.close()
        for proc in self.nodes.values():
            await asyncio.to_thread(proc.stop)

    # -- questions ---------------------------------------------------------------

    async def owner(self, node: str, prefix: str) -> cache_pb2.Owner:
        """`node`'s answer to GetOwnership(prefix)."""
        reply = await self.stub(node).GetOwnership(
            cache_pb2.GetOwnershipRequest(prefix=prefix), timeout=5
        )
        return reply.owner

    async def held_by(self, node: str) -> set[str]:
        """The prefixes `node` says it holds."""
        reply = await self.stub(node).ListOwners(cache_pb2.ListOwnersRequest(), timeout=5)
        return {o.prefix for o in reply.owners if o.node_id == node}

    async def wait_members(self, nodes: Iterable[str], within: float = 30.0) -> None:
        """Until each of `nodes` lists exactly `nodes` as its live members."""
        expected = set(nodes)

        async def agreed() -> bool:
            for node in expected:
                reply = await self.stub(node).ListOwners(cache_pb2.ListOwnersRequest(), timeout=5)
                if {m.node_id for m in reply.members if m.alive} != expected:
                    return False
            return True

        await eventually(agreed, within, f"members {sorted(expected)} never agreed")

    async def settled_owner(
        self, prefix: str, nodes: Iterable[str], within: float = 30.0
    ) -> cache_pb2.Owner:
        """The owner every one of `nodes` names for `prefix`, once they agree and it holds it."""
        asked = list(nodes)
        found: list[cache_pb2.Owner] = []

        async def agreed() -> bool:
            views = [await self.owner(node, prefix) for node in asked]
            names = {(v.node_id, v.epoch) for v in views}
            if len(names) != 1 or views[0].epoch == 0 or views[0].node_id not in self.nodes:
                return False
            if prefix not in await self.held_by(views[0].node_id):
                return False
            found[:] = [views[0]]
            return True

        await eventually(agreed, within, f"no agreed owner of {prefix!r}")
        return found[0]
