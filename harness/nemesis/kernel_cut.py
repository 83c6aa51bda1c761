"""The fault class `netns-partition`: a node cut off by the kernel, in a network namespace.

When the class is in a run, the cluster runs one node (`NemesisCluster.netns_node`)
inside a namespace of its own for the whole run: it listens and is advertised at
the namespace's address, and reaches its peers and PostgreSQL through the
cluster's proxies, which listen on the host's side of its veth (cluster.py). The
fault adds iptables DROP rules on that node's link inside its namespace, both
ways, or one way (a node that hears nothing; a node nobody hears), so its peers,
its clients and, on PostgreSQL, its database get no packet from it and it gets
none, with every socket left open; then removes them. Unlike `peer-cut`'s proxy,
no process acknowledges anything for the cut-off node: TCP on either side sees
its segments go unanswered. On SQLite the node shares the database file (the
same filesystem), so the cut is from its peers and clients only: it keeps its
leases, and its prefixes have no owner anyone can reach until the heal.

While the cut lasts the fault checks, with probes of its own (a key of a prefix
the node owns, a near-cache client through a peer), what must hold; what does
not goes into `FaultContext.problems`:
- a forward to the cut-off node (a Get through a peer) answers UNAVAILABLE
  within its deadline;
- the near cache stops serving the prefix within its bound, from a stream the
  cut made silent, and counts the silent stream;
- on PostgreSQL, a write of the prefix through a peer is acknowledged within
  lease + 3 s of the cut (the cut lasts at least that long, so this can fail);
- after the heal the node is fenced and rejoins: read through it, the key has
  the value acknowledged through the peer during the cut, never its own older
  one, and a write through it is acknowledged again.
Their timings are logged, one line per round.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from prometheus_client import CollectorRegistry

from harness.nemesis import netns
from harness.nemesis.cluster import NODES, NemesisCluster
from harness.nemesis.faults import FaultContext, register
from harness.nemesis.workload import CALL_TIMEOUT, NEAR_BOUND_MS
from marketcache.v1 import cache_pb2, cache_pb2_grpc
from services.cache.ownership import preferred
from services.client import CacheClient, CacheError
from services.client.near.watch_streams import STALL_SECONDS
from services.common.json_value import from_value, to_value

log = logging.getLogger(__name__)

NAME = "netns-partition"
# Which packets of the victim's link are dropped: (what it receives, what it sends).
DIRECTIONS = {"both": (True, True), "inbound": (True, False), "outbound": (False, True)}
# A takeover on PostgreSQL must come within the lease plus this (seconds).
TAKEOVER_MARGIN = 3.0
# How long a node that hears nothing (an inbound cut) may still get what it sends
# through: TCP sends new segments, its stream's heartbeats among them, until its
# retransmission timer (at least 200 ms) fires for the first one never
# acknowledged; then it only retransmits. Its near caches' bound runs from there.
STILL_SENT = 1.0


@dataclass
class _Figures:
    """What one cut measured (seconds from the cut), for the round's log line."""

    forward: float | None = None
    forward_code: str = ""
    near_stopped: float | None = None
    silent_counted: float | None = None
    takeover: float | None = None
    problems: list[str] = field(default_factory=list)


class _Probe:
    """A key of a prefix the victim owns, a peer, and a near-cache client through it."""

    def __init__(self, ctx: FaultContext) -> None:
        cluster = ctx.cluster
        self.cluster = cluster
        self.victim = ctx.victim
        self.peers = [n for n in NODES if n != ctx.victim]
        tag = f"kc{ctx.rng.randrange(1 << 32):08x}"
        prefix = next(p for i in range(1000) if preferred(p := f"{tag}x{i}", NODES) == ctx.victim)
        self.prefix = prefix
        self.key = f"{prefix}:k"
        self._channels = {n: grpc.aio.insecure_channel(cluster.address(n)) for n in NODES}
        self.stubs = {n: cache_pb2_grpc.CacheServiceStub(c) for n, c in self._channels.items()}
        self.registry = CollectorRegistry()
        self.near = CacheClient(
            cluster.address(self.peers[0]),
            timeout=CALL_TIMEOUT,
            registry=self.registry,
            near_cache_bytes=1 << 20,
            near_max_staleness_ms=NEAR_BOUND_MS,
        )
        self.figures = _Figures()
        # The probe key's acknowledged value (what the victim must serve after the heal).
        self.value: object = None
        self._writes = 0

    async def close(self) -> None:
        await self.near.close()
        for channel in self._channels.values():
            await channel.close(None)

    async def _set(self, node: str) -> str:
        self._writes += 1
        value = f"kcut-{self.key}-{self._writes}"
        request = cache_pb2.SetRequest(key=self.key, value=to_value(value), ttl_seconds=600)
        await self.stubs[node].Set(request, timeout=CALL_TIMEOUT)
        return value

    async def prepare(self, within: float = 30.0) -> None:
        """Until the victim owns the prefix with a value written, and the near cache
        serves the key from the victim's stream."""
        near = self.near.near
        assert near is not None

        async def ready() -> bool:
            self.value = await self._set(self.peers[0])
            reply = await self.stubs[self.victim].GetOwnership(
                cache_pb2.GetOwnershipRequest(prefix=self.prefix), timeout=CALL_TIMEOUT
            )
            if reply.owner.node_id != self.victim or reply.owner.epoch == 0:
                return False
            await self.near.get(self.key)
            return near.lookup(self.key) is not None

        if not await _until(ready, time.monotonic() + within, 0.1):
            raise TimeoutError(
                f"{self.victim} did not come to own {self.prefix} with a warm near cache "
                f"within {within}s"
            )

    def silent_count(self) -> float:
        value = self.registry.get_sample_value("cache_near_flushes_total", {"reason": "silent"})
        return float(value or 0.0)

    async def forward(self, cut_at: float) -> None:
        """A Get through a peer, forwarded to the cut-off owner."""
        began = time.monotonic()
        code = grpc.StatusCode.OK
        try:
            await self.stubs[self.peers[0]].Get(
                cache_pb2.GetRequest(key=self.key), timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
        took = time.monotonic() - began
        self.figures.forward, self.figures.forward_code = took, code.name
        if code is not grpc.StatusCode.UNAVAILABLE:
            self.figures.problems.append(
                f"a forward to cut-off {self.victim} answered {code.name} after {took:.2f}s "
                f"({time.monotonic() - cut_at:.2f}s into the cut), not UNAVAILABLE within "
                f"its {CALL_TIMEOUT}s deadline"
            )

    async def near_cache(self, cut_at: float, silent_before: float, *, sends: bool) -> None:
        """Until the near cache stops serving the key, then until the silent stream is
        counted; each within its bound (`sends`: the cut leaves the victim's own
        packets going out, for a while)."""
        near = self.near.near
        assert near is not None
        bound = NEAR_BOUND_MS / 1000 + (STILL_SENT if sends else 0.0)
        served_last = 0.0
        while True:
            # Taken before the lookup: it served at this time or later.
            at = time.monotonic() - cut_at
            if near.lookup(self.key) is None:
                break
            served_last = at
            if served_last > bound + 1.0:
                break
            await asyncio.sleep(0.01)
        self.figures.near_stopped = served_last
        if served_last > bound:
            self.figures.problems.append(
                f"the near cache served {self.key} {served_last:.2f}s into the cut of its "
                f"owner {self.victim}, past its bound ({bound:.1f}s from the cut)"
            )
        deadline = cut_at + STALL_SECONDS + 3.0 + (STILL_SENT if sends else 0.0)

        async def counted() -> bool:
            return self.silent_count() > silent_before

        if await _until(counted, deadline, 0.05):
            self.figures.silent_counted = time.monotonic() - cut_at
        else:
            self.figures.problems.append(
                f"the near cache's stream from cut-off {self.victim} was not counted "
                f"silent within {deadline - cut_at:.1f}s"
            )

    async def takeover(self, cut_at: float, lease: float) -> None:
        """Writes of the key through the peers until one is acknowledged (PostgreSQL)."""
        limit = lease + TAKEOVER_MARGIN
        peers = itertools.cycle(self.peers)

        async def written() -> bool:
            self.value = await self._set(next(peers))
            return True

        if not await _until(written, cut_at + limit, 0.05):
            self.figures.problems.append(
                f"no write of {self.prefix} (owned by cut-off {self.victim}) was "
                f"acknowledged through another node within lease + "
                f"{TAKEOVER_MARGIN:.0f}s ({limit:.1f}s)"
            )
            return
        took = self.figures.takeover = time.monotonic() - cut_at
        if took > limit:
            self.figures.problems.append(
                f"a write of {self.prefix} was acknowledged through another node only "
                f"{took:.1f}s after its owner {self.victim} was cut off (limit {limit:.1f}s)"
            )

    async def rejoined(self, within: float = 60.0) -> None:
        """After the heal: the victim serves the acknowledged value, and takes a write."""
        stub = self.stubs[self.victim]
        stale: list[object] = []

        async def served() -> bool:
            reply = await stub.Get(cache_pb2.GetRequest(key=self.key), timeout=CALL_TIMEOUT)
            seen = from_value(reply.value) if reply.found else None
            if seen != self.value:
                stale.append(seen)
                return True
            self.value = await self._set(self.victim)
            return True

        if not await _until(served, time.monotonic() + within, 0.2):
            self.figures.problems.append(
                f"{self.victim} did not serve and take a write of {self.key} "
                f"within {within}s of the heal"
            )
        elif stale:
            self.figures.problems.append(
                f"{self.victim} served {self.key} = {stale[0]!r} after the heal, "
                f"not the acknowledged {self.value!r}"
            )


async def _until(step: Callable[[], Awaitable[bool]], deadline: float, every: float) -> bool:
    """Run `step` until it returns True (an error from a call: not yet) or `deadline`
    passes; whether it returned True."""
    while True:
        try:
            if await step():
                return True
        except (grpc.aio.AioRpcError, CacheError) as exc:
            log.debug("not yet: %s", exc)
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)


def _namespaced(cluster: NemesisCluster) -> list[str]:
    return [cluster.netns_node] if cluster.lab is not None and cluster.netns_node else []


@register(
    NAME,
    "a node in a network namespace of its own cut off by iptables DROP, both ways or one, "
    "sockets open: from its peers, clients and PostgreSQL (on SQLite it shares the file)",
    needs=netns.available,
    victims=_namespaced,
    namespace=True,
)
async def netns_partition(ctx: FaultContext) -> AsyncIterator[None]:
    lab = ctx.cluster.lab
    if lab is None or ctx.victim != ctx.cluster.netns_node:
        raise RuntimeError(f"{NAME} needs the victim in a namespace (cluster netns_node)")
    direction = ctx.rng.choice(("both", "both", "inbound", "outbound"))
    inbound, outbound = DIRECTIONS[direction]
    probe = _Probe(ctx)
    try:
        await probe.prepare()
        silent_before = probe.silent_count()
        lab.cut_off(ctx.victim, inbound=inbound, outbound=outbound)
        cut_at = time.monotonic()
        try:
            # The cut lasts the hold, and at least until every check is done.
            checks = [
                probe.forward(cut_at),
                probe.near_cache(cut_at, silent_before, sends=not outbound),
                asyncio.sleep(ctx.hold),
            ]
            if ctx.cluster.dialect == "postgresql":
                checks.append(probe.takeover(cut_at, ctx.cluster.lease_seconds))
            await asyncio.gather(*checks)
            held = time.monotonic() - cut_at
        finally:
            lab.heal()
        yield
        await probe.rejoined()
        figures = probe.figures
        log.info(
            "%s (%s) of %s for %.1fs: forward %s in %.2fs, near cache stopped %.2fs and "
            "silent counted %.1fs into the cut, takeover %s",
            NAME,
            direction,
            ctx.victim,
            held,
            figures.forward_code,
            figures.forward or 0.0,
            figures.near_stopped or 0.0,
            figures.silent_counted or 0.0,
            "-" if figures.takeover is None else f"{figures.takeover:.2f}s",
        )
        ctx.problems += [f"{NAME} ({direction}): {p}" for p in figures.problems]
    finally:
        await probe.close()
