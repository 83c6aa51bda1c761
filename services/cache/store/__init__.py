"""The store of one database: gates, memory, the overlay and the rules for writes.

- `cache_store`: `CacheStore`, Get/Set/Delete/MGet/MSet/Clear in prefix order;
- `gate`: the per-prefix input gate; `overlay`: admitted, uncommitted writes and
  the output gate; `lru`: committed entries in memory;
- `tenure`: what a gained or lost lease means to memory;
- `scan`: a prefix a page at a time (database pages merged with the overlay);
- `keys`, `ttl_policy`, `admission`: the rules a write is checked against;
- `stats`: the counters behind the metrics and GetMetrics.
"""
