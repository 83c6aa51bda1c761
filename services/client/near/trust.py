"""Per-prefix trust: what the near cache knows of a prefix's Watch stream, and until
when that stream vouches for the prefix's entries."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

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

    def until(self, valid_for_ms: int, sent_ms: int) -> float:
        """Monotonic deadline: min(owner's validity, our bound) from the owner's stamp,
        never from receipt, so a late delivery cannot stretch it."""
        span = min(valid_for_ms, self.max_staleness_ms) / 1000
        if sent_ms > 0:
            span -= max(0.0, self._wall() - sent_ms / 1000)
        return self.monotonic() + span
