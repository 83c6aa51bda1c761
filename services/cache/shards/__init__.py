"""Prefixes sharded over several databases (CACHE_DB_URLS).

- `homes`: each prefix's home database (rendezvous hashing over the shards'
  identities), and the refusal to start over data homed elsewhere;
- `sharded_store`: one store cell per database, and `ShardedStore`, the `Store`
  over all of them (a prefix at its home, a batch split by home);
- `sharded_ownership`: `ShardedOwnership`, the node's ownership over every
  shard's leases (a prefix's owner is the holder of its lease in its home).
"""
