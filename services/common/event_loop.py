"""The event loop every process runs on: uvloop when installed, plain asyncio otherwise.

uvloop (libuv) schedules callbacks and does socket I/O in C; on a bare grpc.aio
server it was worth 10-20% more calls per second (#22). `MARKETCACHE_EVENT_LOOP`
set to `asyncio` keeps the standard loop (to compare, or to rule the loop out
when chasing a bug).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from services.common.config import ConfigError, load_or_exit

T = TypeVar("T")

LOOP_VAR = "MARKETCACHE_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")


def loop_factory(env: dict[str, str] | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """The factory of the loop to run on; a bad `MARKETCACHE_EVENT_LOOP` fails naming it."""
    wanted = (env if env is not None else os.environ).get(LOOP_VAR, "uvloop").strip().lower()
    if wanted not in CHOICES:
        raise ConfigError(f"{LOOP_VAR} must be one of {', '.join(CHOICES)}, not {wanted!r}")
    if wanted == "uvloop":
        try:
            import uvloop
        except ImportError:  # not installed (another platform): the standard loop does
            return asyncio.new_event_loop
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the chosen loop (a bad setting exits 2, naming it)."""
    factory = load_or_exit(loop_factory)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
