"""The near cache under a client wall clock that disagrees with the owner's.

Unit tests drive `NearCache` with fake clocks; the end-to-end ones run the
history workload with the reader's wall clock moved by libfaketime
(harness/nemesis/clock.py) and judge the history with the staleness checker.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from harness.nemesis.clock import ClockSkew
from marketcache.v1 import cache_pb2
from services.client.near.clock_offset import MAX_RISE, ClockOffset
from services.client.near.near_cache import NearCache
from tests.near_cache.test_history import free_port_env, run_history
from tests.support.processes import start_service

OWNER_WALL = 1_800_000_000.0
BOUND_MS = 1000


class Clocks:
    """A monotonic clock and a wall clock `skew` seconds off the owner's."""

    def __init__(self, skew: float) -> None:
        self.mono = 100.0
        self.skew = skew

    def monotonic(self) -> float:
        return self.mono

    def owner_ms(self) -> int:
        return int((OWNER_WALL + self.mono) * 1000)

    def wall(self) -> float:
        return OWNER_WALL + self.mono + self.skew


def near_with(clocks: Clocks, registry: CollectorRegistry | None = None) -> NearCache:
    return NearCache(
        1 << 20, BOUND_MS, registry=registry, monotonic=clocks.monotonic, wall=clocks.wall
    )


def stream(near: NearCache, clocks: Clocks, beats: int, delay: float = 0.001) -> None:
    """Start prefix `p` and deliver `beats` heartbeats, each `delay` after its stamp."""
    near.started("p", cache_pb2.Position(prefix="p", epoch=1, sequence=0), BOUND_MS, 0)
    for _ in range(beats):
        sent = clocks.owner_ms()
        clocks.mono += delay
        near.heartbeat("p", cache_pb2.Position(prefix="p", epoch=1, sequence=0), BOUND_MS, sent)
        clocks.mono += 0.15 - delay


@pytest.mark.parametrize("skew", [8.0, 0.4, -8.0])
def test_a_prefix_is_trusted_whatever_the_clients_wall_clock_offset(skew: float) -> None:
    clocks = Clocks(skew)
    registry = CollectorRegistry()
    near = near_with(clocks, registry)
    stream(near, clocks, beats=5)
    assert near.trusted("p")
    offset = registry.get_sample_value("cache_near_clock_offset_seconds")
    assert offset == pytest.approx(skew, abs=0.01)


def test_a_late_heartbeat_is_trusted_less_by_its_delay_when_the_client_is_behind() -> None:
    clocks = Clocks(-8.0)
    near = near_with(clocks)
    stream(near, clocks, beats=5)
    sent = clocks.owner_ms()
    clocks.mono += 0.7  # delivered 0.7 s after the owner stamped it
    near.heartbeat("p", cache_pb2.Position(prefix="p", epoch=1, sequence=0), BOUND_MS, sent)
    clocks.mono += 0.31  # 1.01 s after the stamp: past the bound
    assert not near.trusted("p")


def test_a_stream_start_is_trusted_from_when_it_was_asked_for() -> None:
    clocks = Clocks(-8.0)
    near = near_with(clocks)
    asked = clocks.mono
    clocks.mono += 0.6  # the start took 0.6 s to arrive
    near.started("p", cache_pb2.Position(prefix="p", epoch=1, sequence=0), BOUND_MS, 1, asked)
    clocks.mono += 0.41
    assert not near.trusted("p")


def test_the_offset_estimate_is_the_windows_least_sample_rising_slowly() -> None:
    now = [0.0]
    offset = ClockOffset(window=10, monotonic=lambda: now[0])
    assert offset.delay(8.3) == 0.0
    assert offset.delay(8.001) == 0.0
    now[0] = 5.0
    assert offset.delay(8.5) == pytest.approx(0.499)
    now[0] = 10.5  # 8.001 (taken at 0) leaves the window; 8.5 (at 5) stays...
    # ...but the estimate rises by at most MAX_RISE a second since it was last given.
    assert offset.delay(8.6) == pytest.approx(8.6 - (8.001 + 5.5 * MAX_RISE))
    assert offset.estimate == pytest.approx(8.001 + 5.5 * MAX_RISE)
    # A step forward of the client's clock is followed, slowly: counted as delay meanwhile.
    for _ in range(60):
        now[0] += 1.0
        offset.delay(8.5)
    assert offset.estimate == pytest.approx(8.5)


def test_a_late_message_after_a_silence_longer_than_the_window_counts_its_delay() -> None:
    now = [0.0]
    offset = ClockOffset(window=10, monotonic=lambda: now[0])
    for _ in range(10):  # a healthy stream: 1 ms from stamp to receipt
        now[0] += 0.1
        assert offset.delay(0.001) == pytest.approx(0.0)
    # A partition leaves the socket open: nothing for 15 s, then the backlog, the
    # first message of it stamped 5 s before it arrives. Before the rise was bounded
    # the window held only that sample, and it counted as no delay at all.
    now[0] += 15.0
    assert offset.delay(5.0) > 4.8
    assert offset.delay(5.0 - 0.3) > 4.5


@pytest.mark.e2e
@pytest.mark.chaos
@pytest.mark.parametrize("skew", [8.0, -8.0], ids=["ahead", "behind"])
async def test_a_reader_with_a_skewed_wall_clock_serves_hot_keys_within_the_bound(
    tmp_path: Path, skew: float
) -> None:
    proc = await asyncio.to_thread(start_service, "cache", free_port_env(tmp_path), tmp_path)
    clock = ClockSkew(tmp_path / "reader.faketime", skew)
    clock.start()

    async def nothing() -> None:
        return None

    try:
        reads, hits = await run_history(tmp_path, proc.grpc_address, nothing, clock.env())
    finally:
        proc.stop()
    assert hits > 0, f"no read of {reads} came from the near cache"
    stats = [json.loads(line) for line in (tmp_path / "reader.jsonl").read_text().splitlines()]
    estimate = next(s["clock_offset"] for s in stats if s["op"] == "stats")
    assert estimate == pytest.approx(skew, abs=0.5)
