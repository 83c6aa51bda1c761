"""Per-prefix trust: what the near cache knows of a prefix's Watch stream, and until
when that stream vouches for the prefix's entries."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from services.client.near.clock_offset import ClockOffset

DEFAULT_MAX_STALENESS_MS = 1000
# Keys whose last invalidation a prefix remembers; older ones raise its floor instead.
RECENT_KEYS = 4096


class PrefixState:
    """One prefix's stream: where it stands, and the oldest read it may still accept."""

    __slots__ = ("epoch", "floor", "live", "recent", "sequence", "valid_until")

    def __init__(self) -> None:
        # Started and not reset: installs are accepted (at this epoch).
        self.live = False
        self.epoch = 0
        # The last invalidation applied (or where the stream started).
        self.sequence = 0
        # Monotonic time until which held entries may be served.
        self.valid_until = 0.0
        # A read whose position is older than this missed a whole-prefix change.
        self.floor = 0
        # key -> sequence of the last invalidation of it applied.
        self.recent: OrderedDict[str, int] = OrderedDict()

    def accepts(self, key: str, epoch: int, sequence: int) -> bool:
        """Whether a read of `key` at (epoch, sequence) missed nothing this stream applied."""
        return (
            self.live
            and epoch == self.epoch
            and sequence >= self.floor
            and sequence >= self.recent.get(key, 0)
        )

    def note(self, key: str, sequence: int) -> None:
        """`key` changed at `sequence`: no read of it older than that may be installed."""
        recent = self.recent
        recent[key] = max(sequence, recent.get(key, 0))
        recent.move_to_end(key)
        if len(recent) > RECENT_KEYS:
            _, oldest = recent.popitem(last=False)
            self.floor = max(self.floor, oldest)


class TrustClock:
    """Turns an owner's promise (valid for so long, as of its stamp) into a local deadline."""

    def __init__(
        self,
        max_staleness_ms: int = DEFAULT_MAX_STALENESS_MS,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.max_staleness_ms = max_staleness_ms
        self.monotonic = monotonic
        self._wall = wall
        # Owners stamp with their wall clocks; ours may be ahead or behind.
        self.offset = ClockOffset(monotonic=monotonic)

    def until(self, valid_for_ms: int, sent_ms: int) -> float:
        """Monotonic deadline: min(owner's validity, our bound) from the owner's stamp,
        never from receipt, so a late delivery cannot stretch it. The delivery's delay
        is measured against the clock offset the stream shows (clock_offset.py): a
        wall clock ahead of the owner's would otherwise count as delay and disable
        the near cache, one behind would hide a late delivery."""
        span = min(valid_for_ms, self.max_staleness_ms) / 1000
        if sent_ms > 0:
            span -= self.offset.delay(self._wall() - sent_ms / 1000)
        return self.monotonic() + span

    def first(self, valid_for_ms: int, sent_ms: int, asked: float | None) -> float:
        """The deadline of a stream's start; `asked` is when it was asked for (monotonic):
        the start was stamped after it, so no later than that."""
        until = self.until(valid_for_ms, sent_ms)
        if asked is None:
            return until
        # The first sample of a client's life cannot tell delay from offset:
        # the request's round trip bounds this one's delay instead.
        return min(until, asked + min(valid_for_ms, self.max_staleness_ms) / 1000)
