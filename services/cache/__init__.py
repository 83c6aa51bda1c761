"""CacheService: a Durable-Objects-style cache with per-prefix gates and group commit.

The package by concern, outermost first (each layer imports only those below it;
every subpackage's `__init__` maps its modules; the design overview is
docs/architecture.md):

- Process: `__main__` (the entry point), `server` (builds everything from
  `config`), `sweeper` (deletes expired rows in the background), `rebalance`
  (the tool that moves prefixes when the shard list changes).
- `rpc/`: the RPC boundary (handlers, WriteBatch, Scan/Export/Import, routing
  to the owner of a prefix).
- `shards/`: prefixes spread over several databases (CACHE_DB_URLS).
- `store/`: the store of one database (gates, memory, the overlay, the rules
  a write is checked against, the counters).
- `watch/`: positions, invalidations and the Watch stream of the near cache.
- `ownership/`: leases, membership, who owns each prefix.
- `storage/`: the database (tables, writes, group commit, the read pool, a full
  disk or the size quota).
- At the bottom: `errors` (the domain errors and their gRPC codes), `clock`,
  `config`.
"""
