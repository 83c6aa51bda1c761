"""Each prefix's home database among the shards (CACHE_DB_URLS), and the refusal to
start over databases that hold prefixes homed elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from services.cache.errors import CacheError, Failure
from services.cache.ownership.membership import preferred
from services.cache.storage.db import CacheDb

REBALANCE_TOOL = "python -m services.cache.rebalance --from OLD_URLS --to NEW_URLS"


def home(prefix: str, identities: Sequence[str]) -> int:
    """The index of `prefix`'s home among the shards: the rendezvous winner.

    Adding a shard moves only the prefixes it wins (about 1/n of them).
    """
    winner = preferred(prefix, identities)
    assert winner is not None, "no shards"
    return identities.index(winner)


class StrandedDataError(CacheError):
    """A database holds live entries of prefixes whose home is another shard."""


def foreign(db: CacheDb, index: int, identities: Sequence[str], now: float) -> list[str]:
    """The prefixes with live entries in shard `index` whose home is another shard."""
    return sorted(p for p in db.count_by_prefix(now) if home(p, identities) != index)


def stranded(found: Sequence[tuple[str, list[str]]]) -> StrandedDataError:
    """The refusal to start over databases holding prefixes homed elsewhere: the list
    changed without moving them, and serving now would hide them."""
    total = sum(len(prefixes) for _, prefixes in found)
    where = "; ".join(
        f"{name}: {', '.join(repr(p) for p in prefixes[:3])}{' ...' if len(prefixes) > 3 else ''}"
        for name, prefixes in found
    )
    return StrandedDataError(
        Failure.UNAVAILABLE,
        f"CACHE_DB_URLS: {total} prefixes have live entries in a database that the current "
        f"list does not make their home ({where}): the list changed without moving them; "
        f"stop every cache and run `{REBALANCE_TOOL}` (docs/scaling.md, changing the shard list)",
    )


class Homes:
    """The home shard of each prefix, by rendezvous hashing over the shards' identities
    (remembered: the hashing costs one hash per shard)."""

    def __init__(self, identities: Sequence[str]) -> None:
        self.identities = list(identities)
        self._index: dict[str, int] = {}

    def index(self, prefix: str) -> int:
        """The index of `prefix`'s home among the shards."""
        index = self._index.get(prefix)
        if index is None:
            index = self._index[prefix] = home(prefix, self.identities)
        return index
