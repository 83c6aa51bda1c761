"""The Python client library of the CacheService.

Public surface: `CacheClient`, `create_cache_instance`, `CacheEntry` and the errors
`CacheError` / `CacheUnavailable`.

- `client.py`    CacheClient and create_cache_instance
- `batching.py`  auto-batching: concurrent get/set/delete share MGet/WriteBatch RPCs
- `near/`        the near cache and its Watch streams
"""

from services.client.client import (
    CacheClient,
    CacheEntry,
    CacheError,
    CacheUnavailable,
    create_cache_instance,
    never_sent,
)

__all__ = [
    "CacheClient",
    "CacheEntry",
    "CacheError",
    "CacheUnavailable",
    "create_cache_instance",
    "never_sent",
]
