"""What the near cache keeps of a value, so that no caller can change what the next reads."""

from __future__ import annotations

import pickle

from services.common.json_value import JSON

# Values returned as they are: immutable, so sharing them is safe.
_IMMUTABLE = (str, int, float, bool, type(None))


def freeze(value: JSON) -> bytes | None:
    """A container's pickle (each read unpickles a private copy); None for an immutable value."""
    return None if isinstance(value, _IMMUTABLE) else pickle.dumps(value, protocol=5)


def thaw(blob: bytes) -> JSON:
    """A fresh copy of a frozen container, for one caller to keep."""
    value: JSON = pickle.loads(blob)
    return value


def stored_size(value: JSON, blob: bytes | None) -> int:
    """Bytes the stored form takes (approximately, for a scalar)."""
    if blob is not None:
        return len(blob)
    return len(value) if isinstance(value, str) else 8
