"""The Health RPC's verdict: healthy, degraded (serving, with a problem) or unavailable."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.cache.store import CacheStore

HEALTHY = "healthy"
DEGRADED = "degraded"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A status and, unless healthy, why."""

    status: str
    reason: str = ""


async def assess(store: CacheStore, *, enabled: bool, probe_timeout: float = 1.0) -> Verdict:
    """Judge the store: open, database answering, membership valid, last commit fine."""
    if not enabled:
        return Verdict(UNAVAILABLE, "the cache is disabled (CACHE_ENABLED=false)")
    if not store.is_open:
        return Verdict(UNAVAILABLE, "the store is not open (starting or stopping)")
    try:
        await asyncio.wait_for(store.probe(), probe_timeout)
    except TimeoutError:
        return Verdict(DEGRADED, f"the database did not answer within {probe_timeout:g}s")
    except Exception as exc:
        return Verdict(DEGRADED, f"the database is unreachable: {type(exc).__name__}")
    problem = store.ownership.problem()
    if problem is not None:
        # Serving nothing it does not already hold: its prefixes go to other nodes.
        return Verdict(DEGRADED, f"no valid membership: {problem}")
    if store.last_commit_error is not None:
        return Verdict(DEGRADED, store.last_commit_error)
    return Verdict(HEALTHY)
