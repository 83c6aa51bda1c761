"""The near cache's storage: a byte-bounded LRU of entries, each filed under a group.

It knows nothing of trust or of the wire: the group is whatever the caller files an
entry under (the near cache uses its prefix's stream state), so that every entry of
a group can be dropped at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from services.common.json_value import JSON

G = TypeVar("G", bound=Hashable)

# Bytes an entry costs besides its key and value (the slot, the entry object, floats).
ENTRY_OVERHEAD = 160


class Entry(Generic[G]):
    """One held value: as stored (see copies.py), when it expires, what it costs."""

    __slots__ = ("blob", "expires", "group", "size", "value")

    def __init__(self, value: JSON, blob: bytes | None, expires: float, size: int, group: G):
        self.value = value
        self.blob = blob
        # Monotonic time at which the entry's TTL passes.
        self.expires = expires
        self.size = size
        self.group = group


class Storage(Generic[G]):
    """Entries by key, least recently used first; `bytes` never exceeds `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, Entry[G]] = OrderedDict()
        self._groups: dict[G, set[str]] = {}
        # Bound once, not wrapped: they are on the path of every near hit.
        # get(key): the entry of `key` if held, its recency unchanged (see touch).
        self.get: Callable[[str], Entry[G] | None] = self._entries.get
        # touch(key): `key` was just served, so it is the last to be evicted.
        self.touch: Callable[[str], None] = self._entries.move_to_end

    def put(self, key: str, entry: Entry[G]) -> bool:
        """Hold `entry` in place of any other of `key`, evicting the least recent to fit;
        False when it could never fit."""
        if entry.size > self.max_bytes:
            return False
        self.drop(key)
        self._entries[key] = entry
        self._groups.setdefault(entry.group, set()).add(key)
        self.bytes += entry.size
        while self.bytes > self.max_bytes:
            self.drop(next(iter(self._entries)))
        return True

    def drop(self, key: str) -> None:
        """Forget `key` (nothing if not held)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
            keys = self._groups.get(entry.group)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._groups[entry.group]

    def drop_group(self, group: G) -> None:
        """Forget every entry filed under `group`."""
        for key in list(self._groups.get(group, ())):
            self.drop(key)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
