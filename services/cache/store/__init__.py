"""The store of one database: gates, memory, the overlay and the rules for writes.

- `interface`: the `Store` protocol every caller holds (a `CacheStore`, or the
  shards' `ShardedStore`), and the values it answers (`Hit`, `Health`, `Removed`);
- `cache_store`: `CacheStore`, Get/Set/Delete/MGet/MSet/Clear in prefix order,
  through one write path;
- `gate`: the per-prefix input gate; `overlay`: admitted, uncommitted writes and
  the output gate; `lru`: committed entries in memory;
- `tenure`: what a gained or lost lease means to memory;
- `scan`: a prefix a page at a time (database pages merged with the overlay);
- `keys`, `ttl_policy`, `admission`: the rules a write is checked against;
- `stats`: the counters behind the metrics and GetMetrics.
"""
