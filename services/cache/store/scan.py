"""Listing a prefix a page at a time: keyset pages of the database merged with the overlay.

A page covers the keys in (after, last]: the next page starts after `last`, so
the pages of one scan tile the key space. A key live for the whole scan falls
in exactly one page's range and is live when that page is read, so it is
listed at least once whatever is written meanwhile; a key written or deleted
during the scan may or may not be (as Redis SCAN promises).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from services.cache.storage.db import Row
from services.cache.store.overlay import Commit, PrefixPending
from services.common.errors import invalid_argument

DEFAULT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Listed:
    """One live entry as a page lists it (`blob` is empty when values were not asked for)."""

    key: str
    blob: bytes
    expires_at: float


@dataclass(frozen=True, slots=True)
class Page:
    """A page of entries in key order, the last key its range covers (None: the scan
    is over), the commits to wait for before revealing it (the output gate), and
    the time it was read at (what remaining TTLs count from)."""

    entries: list[Listed]
    last: str | None
    waits: set[Commit]
    now: float


def merge(
    rows: Sequence[Row], pending: PrefixPending, *, after: str, limit: int, now: float
) -> Page:
    """The page of `limit` keys after `after`: database `rows` (at most `limit`, in
    key order) overlaid by what is admitted but not yet committed."""
    # A full page of rows covers keys up to its last one; a short one, all the rest.
    last = rows[-1].key if len(rows) >= limit else None
    found: dict[str, tuple[bytes, float]] = {}
    waits: set[Commit] = set()
    if pending.clear is None:
        found = {r.key: (r.blob, r.expires_at) for r in rows}
    else:
        waits.add(pending.clear)  # every committed row of the prefix is being cleared
    for key, write in pending.writes.items():
        if key <= after or (last is not None and key > last):
            continue  # another page's range
        waits.add(write.done)
        if write.blob is not None and write.expires_at > now:
            found[key] = (write.blob, write.expires_at)
        else:
            found.pop(key, None)
    keys = sorted(found)
    if len(keys) > limit:
        # Pending writes added keys: the page ends earlier, and so does its range.
        keys = keys[:limit]
        last = keys[-1]
    return Page([Listed(k, *found[k]) for k in keys], last, waits, now)


def encode_cursor(last: str | None) -> str:
    """The opaque cursor that goes on after `last` ("" when the scan is over)."""
    if last is None:
        return ""
    return base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> str:
    """The key a cursor goes on after ("" to start); INVALID_ARGUMENT if it is not one
    that a scan of `prefix` returned."""
    if not cursor:
        return ""
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        key = ""
    if not key.startswith(prefix + ":"):
        raise invalid_argument(
            f"cursor {cursor[:40]!r} is not one a scan of prefix {prefix!r} returned: "
            "pass the previous reply's nextCursor as given, or an empty cursor to start",
            "cursor",
        )
    return key


def page_limit(limit: int, max_batch: int) -> int:
    """The page size asked for (0: DEFAULT_LIMIT); INVALID_ARGUMENT outside 1..max_batch."""
    if limit == 0:
        return min(DEFAULT_LIMIT, max_batch)
    if not 1 <= limit <= max_batch:
        raise invalid_argument(
            f"limit {limit} is out of range: ask for 1 to {max_batch} keys per page "
            "(CACHE_MAX_BATCH), or 0 for the default of 100",
            "limit",
        )
    return limit


def matcher(match: str) -> str | None:
    """The glob to filter keys with (None: all); INVALID_ARGUMENT when absurdly long."""
    if not match or match == "*":
        return None
    if len(match) > 1024:
        raise invalid_argument(
            f"match is {len(match)} characters; a glob over keys of at most 256 bytes "
            "needs no more than 1024",
            "match",
        )
    return match


def matching(entries: list[Listed], glob: str | None) -> list[Listed]:
    """The entries whose whole key matches `glob` (case-sensitive, fnmatch syntax)."""
    if glob is None:
        return entries
    return [e for e in entries if fnmatch.fnmatchcase(e.key, glob)]
