"""The near cache's parts alone, on fake clocks: the storage's byte bound and groups,
the deadline a heartbeat buys, and the install rules that settle the read/invalidate race."""

from __future__ import annotations

from dataclasses import dataclass

from services.client.near.near_cache import Install, NearCache
from services.client.near.storage import Entry, Storage
from services.client.near.trust import TrustClock


@dataclass(frozen=True)
class At:
    """A position, without the wire type (the near cache asks only for its shape)."""

    prefix: str
    epoch: int
    sequence: int


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = 1_700_000_000.0


def entry(size: int, group: str) -> Entry[str]:
    return Entry(value="v", blob=None, expires=1e9, size=size, group=group)


def test_storage_evicts_the_least_recently_served_to_stay_under_its_bytes() -> None:
    storage: Storage[str] = Storage(max_bytes=300)
    for key in ("a", "b", "c"):
        assert storage.put(key, entry(100, "g"))
    storage.touch("a")  # "b" is now the least recent
    assert storage.put("d", entry(100, "g"))
    assert ("a" in storage, "b" in storage, "c" in storage, "d" in storage) == (
        True,
        False,
        True,
        True,
    )
    assert storage.bytes == 300
    assert not storage.put("huge", entry(301, "g"))  # could never fit: nothing evicted
    assert len(storage) == 3


def test_storage_drops_a_group_and_only_that_group() -> None:
    storage: Storage[str] = Storage(max_bytes=10_000)
    storage.put("stock:a", entry(10, "stock"))
    storage.put("stock:b", entry(10, "stock"))
    storage.put("sector:a", entry(10, "sector"))
    storage.drop_group("stock")
    assert ("stock:a" in storage, "stock:b" in storage, "sector:a" in storage) == (
        False,
        False,
        True,
    )
    assert storage.bytes == 10


def test_the_deadline_counts_from_the_owners_stamp_and_never_past_the_bound() -> None:
    clock = Clock()
    trust = TrustClock(1000, monotonic=lambda: clock.mono, wall=lambda: clock.wall)
    # A first stamp at once: the two clocks agree (clock_offset.py estimates the offset).
    assert abs(trust.until(500, int(clock.wall * 1000)) - (clock.mono + 0.5)) < 1e-3
    sent_ms = int((clock.wall - 0.2) * 1000)  # stamped 200 ms ago
    assert abs(trust.until(500, sent_ms) - (clock.mono + 0.3)) < 1e-3
    assert abs(trust.until(5000, sent_ms) - (clock.mono + 0.8)) < 1e-3  # our bound wins
    future_ms = int((clock.wall + 5) * 1000)  # a stamp ahead of our wall clock
    assert trust.until(500, future_ms) <= clock.mono + 0.5


def test_install_opens_a_stream_first_then_holds_and_serves_while_trusted() -> None:
    clock = Clock()
    near = NearCache(1 << 20, 1000, monotonic=lambda: clock.mono, wall=lambda: clock.wall)
    now_ms = int(clock.wall * 1000)
    ticket = near.ticket()
    assert near.install("stock:A", 1, 60, At("stock", 1, 5), ticket) is Install.UNWATCHED
    near.started("stock", At("stock", 1, 5), 1000, now_ms)
    assert near.install("stock:A", 1, 60, At("stock", 1, 5), ticket) is Install.REFUSED  # flushed
    assert near.install("stock:A", 1, 60, At("stock", 1, 5), near.ticket()) is Install.HELD
    assert near.lookup("stock:A") is not None
    clock.mono += 1.5  # no heartbeat for longer than the bound
    assert near.lookup("stock:A") is None
    assert "stock:A" in near  # held, but not served


def test_a_reply_older_than_an_applied_invalidation_is_refused() -> None:
    clock = Clock()
    near = NearCache(1 << 20, 1000, monotonic=lambda: clock.mono, wall=lambda: clock.wall)
    near.install("stock:A", 1, 60, At("stock", 1, 5), near.ticket())
    near.started("stock", At("stock", 1, 5), 1000, int(clock.wall * 1000))
    ticket = near.ticket()
    assert near.invalidated("stock", At("stock", 1, 6), ["stock:A"], whole_prefix=False)
    assert near.install("stock:A", 1, 60, At("stock", 1, 5), ticket) is Install.REFUSED
    assert near.install("stock:A", 2, 60, At("stock", 1, 6), ticket) is Install.HELD
    # A gap in the stream's sequence flushes the prefix: start again.
    assert not near.heartbeat("stock", At("stock", 1, 8), 1000, int(clock.wall * 1000))
    assert "stock:A" not in near
