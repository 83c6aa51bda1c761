"""The bounded in-memory layer: committed entries, least recently used evicted first."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

# Bytes an entry costs beyond its key and value (dict slots, the Entry object,
# the prefix index). A rough figure, so the bound holds for many tiny values too.
ENTRY_OVERHEAD = 160


@dataclass(slots=True)
class Entry:
    """A committed value: the serialized google.protobuf.Value and its expiry."""

    blob: bytes
    expires_at: float
    prefix: str
    size: int


def entry_size(key: str, blob: bytes) -> int:
    """What an entry counts against the memory bound."""
    return len(key) + len(blob) + ENTRY_OVERHEAD


class LruMemory:
    """Key -> Entry, bounded by bytes; holds only committed state (the DB is the truth)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        # Entries pushed out (or never admitted) because of the bound.
        self.evictions = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._by_prefix: dict[str, set[str]] = {}
        self._bytes_by_prefix: dict[str, int] = {}
        # Whether memory holds every live committed entry, so that a miss is
        # definitive: of the whole database (a store alone on it, loaded whole at
        # open), or of these prefixes (loaded whole when their lease was acquired).
        # Memory alone decides it: any eviction ends it.
        self._whole_database = False
        self._whole_prefixes: set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    @property
    def holds_everything(self) -> bool:
        """Whether every live committed entry of the database is here."""
        return self._whole_database

    def holds_whole(self, prefix: str) -> bool:
        """Whether every live committed entry of `prefix` is here (a miss is definitive)."""
        return self._whole_database or prefix in self._whole_prefixes

    def whole_prefixes(self) -> frozenset[str]:
        """The prefixes vouched for one by one."""
        return frozenset(self._whole_prefixes)

    def vouch(self, prefix: str | None, *, since: int) -> None:
        """Memory now holds every live entry of `prefix` (None: of the database), as
        loaded after `evictions` was `since`; nothing is vouched for if any were evicted since."""
        if self.evictions != since:
            return
        if prefix is None:
            self._whole_database = True
        else:
            self._whole_prefixes.add(prefix)

    def doubt(self, prefix: str | None = None) -> None:
        """Vouch no longer for `prefix` (None: for anything), e.g. after a failed commit."""
        if prefix is None:
            self._whole_database = False
            self._whole_prefixes.clear()
        else:
            self._whole_prefixes.discard(prefix)

    def peek(self, key: str) -> Entry | None:
        """The entry, its place in the eviction order untouched."""
        return self._entries.get(key)

    def get(self, key: str) -> Entry | None:
        """The entry, marked most recently used."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, prefix: str, blob: bytes, expires_at: float) -> int:
        """Insert or replace; returns how many entries were evicted to make room."""
        self.remove(key)
        size = entry_size(key, blob)
        if size > self.max_bytes:
            # Bigger than the whole layer: it lives in the database only.
            self.evictions += 1
            self.doubt()
            return 1
        evicted = 0
        while self.bytes + size > self.max_bytes and self._entries:
            old_key, _ = next(iter(self._entries.items()))
            self.remove(old_key)
            evicted += 1
        self._entries[key] = Entry(blob, expires_at, prefix, size)
        self._by_prefix.setdefault(prefix, set()).add(key)
        self._bytes_by_prefix[prefix] = self._bytes_by_prefix.get(prefix, 0) + size
        self.bytes += size
        if evicted:
            self.evictions += evicted
            self.doubt()
        return evicted

    def remove(self, key: str) -> bool:
        """Drop `key`; True when it was present."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self.bytes -= entry.size
        keys = self._by_prefix.get(entry.prefix)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_prefix[entry.prefix]
        left = self._bytes_by_prefix.get(entry.prefix, 0) - entry.size
        if left > 0:
            self._bytes_by_prefix[entry.prefix] = left
        else:
            self._bytes_by_prefix.pop(entry.prefix, None)
        return True

    def remove_prefix(self, prefix: str) -> int:
        """Drop every key of `prefix`; returns how many."""
        keys = list(self._by_prefix.get(prefix, ()))
        for key in keys:
            self.remove(key)
        return len(keys)

    def purge_expired(self, now: float) -> int:
        """Drop entries whose expiry has passed; returns how many."""
        expired = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        for key in expired:
            self.remove(key)
        return len(expired)

    def prefix_bytes(self) -> dict[str, int]:
        """Bytes held per prefix (as counted against the bound); they sum to `bytes`."""
        return dict(self._bytes_by_prefix)

    def prefix_counts(self, now: float) -> dict[str, int]:
        """Live entries per prefix (exact only while memory holds everything)."""
        counts: dict[str, int] = {}
        for prefix, keys in self._by_prefix.items():
            live = sum(1 for key in keys if self._entries[key].expires_at > now)
            if live:
                counts[prefix] = live
        return counts
