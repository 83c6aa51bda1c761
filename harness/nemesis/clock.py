"""Clocks per process through libfaketime: a wall clock set ahead or behind, or one
that runs at another rate.

`ClockSkew` gives a process its own wall clock, which `start()` moves by an offset
and `heal()` puts back, while the process runs (libfaketime reads its spec file
on every call). Its monotonic clock is left alone, so a history recorded with
time.monotonic() still compares across processes, and asyncio's timers are
unaffected. (With the monotonic clock left alone, this libfaketime build fails
time.sleep() with EINVAL: the processes it suits are asyncio ones.)

`drifting_env(rate)` starts a process whose every clock, monotonic included,
runs at `rate` (0.95: 5% slow), which is what a lease's local validity sees.

Two fault classes use them, on PostgreSQL only (where the lease clock is the
server's; on SQLite it is each process's wall clock, one host's by design, so a
per-process clock models a machine SQLite cannot have, docs/ownership.md):
- `clock-skew`: the victim restarted under a `ClockSkew`, its wall clock moved
  3-8 s ahead or behind while it serves, then put back, and a normal restart;
- `clock-slow`: the victim restarted with every clock at 95% speed (inside the
  25% the lease margin covers), then restarted normally.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from harness.nemesis.faults import FaultContext, register, restart

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
# How far clock-skew moves the victim's wall clock (seconds, either way).
SKEW_SECONDS = (3.0, 8.0)
# clock-slow's rate: 5% slow, well inside the 25% the margin (L/4) covers.
SLOW_RATE = 0.95


def missing() -> str | None:
    """Why the clock faults cannot run here (None: they can)."""
    return None if LIBFAKETIME.exists() else f"{LIBFAKETIME} is missing (faketime)"


def _preload() -> dict[str, str]:
    if not LIBFAKETIME.exists():
        raise RuntimeError(f"{LIBFAKETIME} is missing: apt-get install -y faketime")
    return {"LD_PRELOAD": str(LIBFAKETIME)}


def drifting_env(rate: float) -> dict[str, str]:
    """Environment for a process whose clocks all run at `rate` times real time."""
    return {**_preload(), "FAKETIME": f"+0 x{rate}"}


class ClockSkew:
    """One process's wall clock, offset at will while it runs (start/heal)."""

    def __init__(self, spec_file: Path, offset: float) -> None:
        self.spec_file = spec_file
        self.offset = offset
        self._write(0.0)

    def env(self) -> dict[str, str]:
        """What the process must be started with."""
        return {
            **_preload(),
            "FAKETIME_TIMESTAMP_FILE": str(self.spec_file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def start(self) -> None:
        """Move the wall clock by `offset` seconds (ahead when positive)."""
        self._write(self.offset)

    def heal(self) -> None:
        """Put the wall clock back on the host's."""
        self._write(0.0)

    def _write(self, offset: float) -> None:
        tmp = self.spec_file.with_suffix(".tmp")
        tmp.write_text(f"{offset:+.3f}\n")
        tmp.replace(self.spec_file)  # a reader never sees a half-written spec


@register(
    "clock-skew",
    "a node's wall clock moved 3-8 s ahead or behind while it serves (libfaketime), then back",
    ("postgresql",),
    missing,
)
async def clock_skew(ctx: FaultContext) -> AsyncIterator[None]:
    offset = ctx.rng.choice((-1.0, 1.0)) * ctx.rng.uniform(*SKEW_SECONDS)
    skew = ClockSkew(ctx.cluster.workdir / f"{ctx.victim}-clock", offset)
    await restart(ctx, skew.env())
    try:
        skew.start()
        await asyncio.sleep(ctx.hold)
        yield
    finally:
        skew.heal()
        await restart(ctx)


@register(
    "clock-slow",
    "a node restarted with its clocks at 95% speed (inside the lease margin), then normally",
    ("postgresql",),
    missing,
)
async def clock_slow(ctx: FaultContext) -> AsyncIterator[None]:
    await restart(ctx, drifting_env(SLOW_RATE))
    try:
        await asyncio.sleep(ctx.hold)
        yield
    finally:
        await restart(ctx)
