"""This client's wall-clock offset from the owners', estimated from their Watch stamps.

Every stamp an owner sends gives one sample, receipt wall time - stamp = offset +
delay, with delay >= 0. The smallest sample of the last `window` seconds is the
estimate (a minimum filter, as NTP's clock filter keeps the least-delayed sample):
it exceeds the true offset by the least delay seen, tens of microseconds on one
host or a LAN. A message's own delay is then its sample minus the estimate, which
is what the near cache subtracts from an owner's grant: the skew itself drops out.

It errs towards less trust: a sample from an owner whose clock is further ahead
lowers the estimate, which only lengthens every other owner's delays, and a
clock stepped forward is counted as delay until the window forgets the old
minimum. Samples are kept in a monotonic deque (the sliding-window minimum), so
each costs O(1) amortized.

Forgetting raises the estimate, which is the unsafe direction, so it needs
evidence, not just time: the estimate rises at most MAX_RISE seconds per second.
A stream silent for longer than the window (a partition with its socket left
open) would otherwise start again with only its backlog in the window: the first
message of it, delayed by the whole silence, became the minimum, counted as no
delay at all, and renewed trust in entries written over during the silence.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

# How long a sample may stand as the minimum (seconds): long enough to hold a
# quiet moment's delay through a burst, short enough to follow a drifting clock.
WINDOW_SECONDS = 10.0
# How fast the estimate may rise (seconds per second): clocks drift by far less, so
# only a step of this client's clock forward is followed slowly (1 s in 100 s),
# counted as delay meanwhile.
MAX_RISE = 0.01


class ClockOffset:
    """The sliding-window minimum of (receipt - stamp), in seconds."""

    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window
        self._monotonic = monotonic
        # (monotonic time, sample), samples increasing: the head is the minimum.
        self._samples: deque[tuple[float, float]] = deque()
        # The estimate last given, and when (monotonic); None before any sample.
        self._estimate: float | None = None
        self._at = 0.0

    def delay(self, sample: float) -> float:
        """Add `sample` (receipt wall - stamp) and return the message's estimated delay."""
        now = self._monotonic()
        samples = self._samples
        while samples and samples[-1][1] >= sample:
            samples.pop()
        samples.append((now, sample))
        while samples[0][0] < now - self._window:
            samples.popleft()
        estimate = samples[0][1]
        if self._estimate is not None:
            estimate = min(estimate, self._estimate + MAX_RISE * (now - self._at))
        self._estimate, self._at = estimate, now
        return sample - estimate

    @property
    def estimate(self) -> float:
        """This clock minus the owners' (seconds); 0.0 before any sample."""
        return 0.0 if self._estimate is None else self._estimate
