"""Where each prefix's history stands: (lease epoch, sequence of its last commit group).

A sequence counts the commit groups that touched a prefix within one lease
epoch of its owner, in commit order; a new epoch starts again at 0. Near-cache
clients compare positions to notice a missed invalidation (a sequence jump) or
a new history (a new epoch), and to refuse a read older than an invalidation
they already applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class At:
    """A position: `prefix`'s history at (`epoch`, `sequence`); epoch 0 means unknown."""

    prefix: str
    epoch: int
    sequence: int


class Positions:
    """The last committed position of every prefix this node has written."""

    def __init__(self, epoch_of: Callable[[str], int | None]) -> None:
        # The epoch of this node's lease on a prefix, None when it holds none.
        self._epoch_of = epoch_of
        self._at: dict[str, tuple[int, int]] = {}

    def current(self, prefix: str) -> At:
        """Where `prefix` stands now (epoch 0 when this node holds no lease on it).

        Taken before a read, it is never later than what the read sees: a client
        may then refuse the value too often, never too rarely.
        """
        epoch = self._epoch_of(prefix)
        if epoch is None:
            return At(prefix, 0, 0)
        known = self._at.get(prefix)
        if known is None or known[0] != epoch:
            return At(prefix, epoch, 0)
        return At(prefix, epoch, known[1])

    def advance(self, prefix: str, epoch: int) -> At | None:
        """The position of a new commit group on `prefix` admitted under `epoch`, or None
        for a group of an older tenure than one already numbered (its watchers are reset)."""
        known = self._at.get(prefix)
        if known is None or epoch > known[0]:
            sequence = 1
        elif epoch == known[0]:
            sequence = known[1] + 1
        else:
            return None
        self._at[prefix] = (epoch, sequence)
        return At(prefix, epoch, sequence)
