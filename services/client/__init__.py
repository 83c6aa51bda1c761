"""The Python client library of the CacheService.

Public surface: `CacheClient`, `create_cache_instance`, `CacheEntry` and the errors
`CacheError` / `CacheUnavailable`. Where each concern lives, bottom to top:

- `errors.py`     the client's exceptions, from gRPC status codes
- `transport.py`  channels, the route table (prefix -> owner), redirects, retries,
                  `never_sent`; the public `call()` every layer goes through
- `kv.py`         the narrow key-value interface the layers share (`KeyValue`, `Hit`)
- `direct.py`     the bottom layer: one RPC per operation (per owner for a batch)
- `batching.py`   auto-batching: concurrent get/set/delete share MGet/WriteBatch RPCs
- `near/`         the near cache (storage, trust, copies, metrics), its Watch streams,
                  and the layer that serves reads from it
- `client.py`     CacheClient: the policy (JSON, TTLs, cache-aside), composed once
"""

from services.client.client import CacheClient, CacheEntry, create_cache_instance
from services.client.errors import CacheError, CacheUnavailable
from services.client.transport import never_sent

__all__ = [
    "CacheClient",
    "CacheEntry",
    "CacheError",
    "CacheUnavailable",
    "create_cache_instance",
    "never_sent",
]
