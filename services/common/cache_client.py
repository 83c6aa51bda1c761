"""Deprecated: import from `services.client` instead.

The client library moved to its own package, `services/client/`. This module
re-exports its public names for one release, then goes away.
"""

import warnings

from services.client import (
    CacheClient,
    CacheEntry,
    CacheError,
    CacheUnavailable,
    create_cache_instance,
    never_sent,
)
from services.client.client import DEFAULT_TIMEOUT, DEFAULT_TTL, MSetItem, metrics_dict

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TTL",
    "CacheClient",
    "CacheEntry",
    "CacheError",
    "CacheUnavailable",
    "MSetItem",
    "create_cache_instance",
    "metrics_dict",
    "never_sent",
]

warnings.warn(
    "services.common.cache_client is deprecated: import from services.client",
    DeprecationWarning,
    stacklevel=2,
)
