"""Commands that watch the cache: stat, health, owners, latency."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import click
from rich.console import Console

from services.cli.output import human_bytes, json_line, show, table, to_terminal
from services.cli.session import Target, Unreachable
from services.client import CacheClient


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between lines.",
)
@click.option(
    "--count", type=click.IntRange(min=0), default=0, help="Lines to print (0: until interrupted)."
)
@click.pass_obj
def stat(target: Target, interval: float, count: int) -> None:
    """A line per interval: hits, misses, hit rate, keys, memory, ops/s (like redis-cli --stat)."""
    console = Console() if to_terminal() else None

    async def work(client: CacheClient) -> None:
        before = await client.get_metrics()
        started = time.monotonic()
        if console is not None:
            header = ("hits", "misses", "hit rate", "keys", "memory", "ops/s")
            console.print(" ".join(f"{h:>10}" for h in header), style="bold")
        printed = 0
        while count == 0 or printed < count:
            await asyncio.sleep(interval)
            now = await client.get_metrics()
            elapsed = time.monotonic() - started
            started += elapsed
            line = _stat_line(before, now, elapsed)
            before = now
            if console is None:
                json_line(line)
            else:
                cells = (
                    line["hits"],
                    line["misses"],
                    f"{line['hitRate']:.1%}",
                    line["keys"],
                    human_bytes(line["memoryBytes"]),
                    f"{line['opsPerSecond']:.1f}",
                )
                console.print(" ".join(f"{c:>10}" for c in cells))
            printed += 1

    target.run(work)


def _ops(metrics: dict[str, Any]) -> int:
    return int(metrics["hits"] + metrics["misses"] + metrics["sets"] + metrics["deletes"])


def _stat_line(before: dict[str, Any], now: dict[str, Any], elapsed: float) -> dict[str, Any]:
    """One interval: the totals now and the operations per second since the last line."""
    return {
        "hits": now["hits"],
        "misses": now["misses"],
        "hitRate": now["hitRate"],
        "keys": now["keys"],
        "memoryBytes": now["memoryBytes"],
        "opsPerSecond": round(max(0, _ops(now) - _ops(before)) / max(elapsed, 1e-9), 1),
    }


@click.command()
@click.pass_obj
def health(target: Target) -> None:
    """The cache's health: status, hit rate, keys and memory (exits 3 when unreachable)."""

    async def work(client: CacheClient) -> dict[str, Any]:
        return await client.health()

    report = target.run(work)
    if "nodeId" not in report:
        # health() answers an unreachable cache with a report rather than an error.
        raise Unreachable(f"cache at {target.address} unreachable: {report.get('reason', '')}")
    if not to_terminal():
        json_line(report)
        return
    metrics = report["metrics"]
    rows = [
        ("status", report["status"] + (f" ({report['reason']})" if report["reason"] else "")),
        ("node", report["nodeId"]),
        ("hit rate", f"{report['hitRate']:.1%}"),
        ("keys", metrics["keys"]),
        (
            "memory",
            f"{human_bytes(metrics['memoryBytes'])} of {human_bytes(metrics['maxMemoryBytes'])}",
        ),
    ]
    table(f"cache at {target.address}", ("", ""), rows, report)


@click.command()
@click.pass_obj
def owners(target: Target) -> None:
    """The owner of each prefix, and the live members."""

    async def work(client: CacheClient) -> Any:
        return await client.owners()

    reply = target.run(work)
    data = {
        "owners": [
            {
                "prefix": o.prefix,
                "nodeId": o.node_id,
                "address": o.address,
                "epoch": o.epoch,
                "expiresAt": o.expires_at,
            }
            for o in reply.owners
        ],
        "members": [
            {
                "nodeId": m.node_id,
                "address": m.address,
                "alive": m.alive,
                "heartbeatAt": m.heartbeat_at,
            }
            for m in reply.members
        ],
    }
    rows = [(o["prefix"], o["nodeId"], o["address"], o["epoch"]) for o in data["owners"]]
    table("owners", ("prefix", "node", "address", "epoch"), rows, data)


@click.command()
@click.option(
    "--count",
    type=click.IntRange(min=1, max=100_000),
    default=100,
    show_default=True,
    help="Round trips.",
)
@click.pass_obj
def latency(target: Target, count: int) -> None:
    """Round-trip latency to the cache in ms: min, p50, p99, max (like redis-cli --latency)."""

    async def work(client: CacheClient) -> list[float]:
        samples: list[float] = []
        for _ in range(count):
            started = time.perf_counter()
            await client.owners()  # answered from the node's memory: the round trip itself
            samples.append((time.perf_counter() - started) * 1000)
        return sorted(samples)

    samples = target.run(work)
    summary = {
        "count": len(samples),
        "minMs": round(samples[0], 3),
        "p50Ms": round(_quantile(samples, 0.5), 3),
        "p99Ms": round(_quantile(samples, 0.99), 3),
        "maxMs": round(samples[-1], 3),
    }
    if to_terminal():
        show(summary)
    else:
        json_line(summary)


def _quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted samples."""
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]
