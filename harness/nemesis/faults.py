"""The fault classes the nemesis knows, in a registry other modules add to.

A fault class is an async context manager factory: entering it breaks something
about one node (the victim), leaving it heals. `register` adds one; the clock
and disk faults live in modules of their own (`PLUGINS`) and register theirs on
import. A fault that finds something wrong by itself (a node that exited) says
so in `FaultContext.problems`. A class that cannot run here (a mount needs root)
says why in `needs`, and is left out. A class that acts on some nodes only names
them (`victims`: peer-cut needs a proxy in front); one that needs a node of the
cluster in a network namespace of its own says so (`namespace`), and the runner
builds the cluster that way when the class is in the run.
"""

from __future__ import annotations

import asyncio
import importlib
import random
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from harness.nemesis import signals
from harness.nemesis.cluster import NODES, NemesisCluster
from harness.nemesis.proxy import Direction

BOTH = ("sqlite", "postgresql")
# Modules that register more fault classes when they exist (harness/nemesis/clock.py, disk.py).
PLUGINS = ("harness.nemesis.clock", "harness.nemesis.disk", "harness.nemesis.kernel_cut")


@dataclass
class FaultContext:
    """What a fault acts on: the cluster, the victim node, how long to hold."""

    cluster: NemesisCluster
    victim: str
    hold: float
    rng: random.Random
    # What the fault itself found wrong (a violation of the run).
    problems: list[str] = field(default_factory=list)


Inject = Callable[[FaultContext], AbstractAsyncContextManager[None]]
# Why a fault class cannot run on this machine (None: it can).
Needs = Callable[[], str | None]
# The nodes of a cluster a fault class may act on.
Victims = Callable[[NemesisCluster], Sequence[str]]


def _always() -> str | None:
    return None


def _any_node(_: NemesisCluster) -> Sequence[str]:
    return NODES


@dataclass(frozen=True)
class FaultClass:
    """One kind of fault: its name, what it does (one line), where it applies."""

    name: str
    what: str
    databases: tuple[str, ...]
    inject: Inject
    needs: Needs = _always
    victims: Victims = _any_node
    # Needs one node of the cluster in a network namespace of its own.
    namespace: bool = False


REGISTRY: dict[str, FaultClass] = {}


def register(
    name: str,
    what: str,
    databases: tuple[str, ...] = BOTH,
    needs: Needs = _always,
    *,
    victims: Victims = _any_node,
    namespace: bool = False,
) -> Callable[[Callable[[FaultContext], AsyncIterator[None]]], Inject]:
    """Decorate an async generator (break, yield, heal) as the fault class `name`."""

    def add(fn: Callable[[FaultContext], AsyncIterator[None]]) -> Inject:
        inject = asynccontextmanager(fn)
        REGISTRY[name] = FaultClass(name, what, databases, inject, needs, victims, namespace)
        return inject

    return add


def fault_classes(dialect: str, only: Collection[str] | None = None) -> list[FaultClass]:
    """Every registered class that applies to `dialect` and can run here, plugins
    loaded, by name; with `only`, those of these names (an unknown name is an error)."""
    for module in PLUGINS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    unknown = sorted(set(only or ()) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown fault classes {unknown}; known: {sorted(REGISTRY)}")
    usable = (
        f
        for f in REGISTRY.values()
        if dialect in f.databases and f.needs() is None and (only is None or f.name in only)
    )
    return sorted(usable, key=lambda f: f.name)


async def restart(ctx: FaultContext, extra_env: Mapping[str, str] | None = None) -> None:
    """SIGTERM the victim, wait for its exit, and start it again (with `extra_env`)."""
    await asyncio.to_thread(ctx.cluster.nodes[ctx.victim].terminate)
    await ctx.cluster.start(ctx.victim, extra_env=extra_env)


async def _hold(ctx: FaultContext) -> None:
    await asyncio.sleep(ctx.hold)


@register("pause", "SIGSTOP of a node past its lease, then SIGCONT")
async def pause(ctx: FaultContext) -> AsyncIterator[None]:
    pid = ctx.cluster.nodes[ctx.victim].pid
    with signals.paused(pid):
        await _hold(ctx)
        yield


@register("kill", "kill -9 of a node, restarted on the same port a lease later")
async def kill(ctx: FaultContext) -> AsyncIterator[None]:
    proc = ctx.cluster.nodes[ctx.victim]
    signals.kill9(proc.pid)
    await asyncio.to_thread(proc.popen.wait, 30)
    try:
        await _hold(ctx)
        yield
    finally:
        await ctx.cluster.start(ctx.victim)


@register(
    "restart-beside-busy",
    "SIGTERM of a node and a new start at once, beside the busy others (must never exit)",
)
async def restart_beside_busy(ctx: FaultContext) -> AsyncIterator[None]:
    await asyncio.to_thread(ctx.cluster.nodes[ctx.victim].terminate)
    proc = await ctx.cluster.start(ctx.victim)
    await _hold(ctx)
    code = proc.popen.poll()
    if code is not None:
        ctx.problems.append(f"{ctx.victim} exited ({code}) after it started beside busy nodes")
        await ctx.cluster.start(ctx.victim)
    yield


@register(
    "peer-cut",
    "a node cut off from its peers and clients (blackhole proxy, both ways, sockets open)",
    victims=lambda cluster: sorted(cluster.node_proxy),
)
async def peer_cut(ctx: FaultContext) -> AsyncIterator[None]:
    with ctx.cluster.node_proxy[ctx.victim].partitioned():
        await _hold(ctx)
        yield


@register(
    "db-cut",
    "a node cut off from PostgreSQL between requests (both ways, sockets open)",
    ("postgresql",),
)
async def db_cut(ctx: FaultContext) -> AsyncIterator[None]:
    with ctx.cluster.db_proxy[ctx.victim].partitioned():
        await _hold(ctx)
        yield


@register(
    "db-cut-mid-commit",
    "a node cut off from PostgreSQL inside a group commit (both ways, sockets open)",
    ("postgresql",),
)
async def db_cut_mid_commit(ctx: FaultContext) -> AsyncIterator[None]:
    proxy = ctx.cluster.db_proxy[ctx.victim]
    # Every value the workload writes carries this, so the next commit of the victim does.
    fell = proxy.cut_on(b"nemesis-", Direction.BOTH)
    try:
        if not await asyncio.to_thread(fell.wait, ctx.hold):
            proxy.cut()  # no commit came: cut between requests instead
        await _hold(ctx)
        yield
    finally:
        proxy.heal()
