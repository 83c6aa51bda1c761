"""The client's near cache (docs/near-cache.md).

- `near_cache.py`     NearCache: what may be held and served, settled by position
- `storage.py`        a byte-bounded LRU of entries filed by group (no trust, no wire types)
- `trust.py`          each prefix's stream state, and the deadline a heartbeat buys
- `copies.py`         what is kept of a value so callers cannot change the next read's
- `metrics.py`        the cache_near_* counters
- `watch_streams.py`  one Watch stream per prefix held, always started again
- `layer.py`          NearLayer: the near cache over the client's key-value stack
"""
