"""CacheService: a Durable-Objects-style cache with per-prefix gates and group commit.

The package by concern, outermost first (each layer imports only those below it;
the design overview is docs/architecture.md):

- Process: `__main__` (the entry point), `server` (builds everything from
  `config`), `sweeper` (deletes expired rows in the background).
- RPC boundary: `servicer` (protobuf in and out, errors to gRPC status) and
  `routing` (forwards calls on prefixes owned elsewhere).
- Rules for requests: `keys` (key and prefix syntax), `ttl_policy`,
  `admission` (validates writes against both and the limits), `errors` (the
  domain errors and the one mapping to gRPC codes).
- The store: `store` (Get/Set/Delete/MGet/MSet/Clear in prefix order, health),
  with `gate` (the per-prefix input gate), `overlay` (admitted, uncommitted
  writes and the output gate), `lru` (committed entries in memory),
  `tenure` (what a gained or lost lease means to memory), `stats`.
- Writing and reading the database: `writes` (the write operations, their
  outcomes, the one branch on their kind), `group_commit` (one writer thread,
  one transaction per group), `readers` (the read pool), `db` and `tables`,
  `sqlite_writer` (a group of Sets on SQLite, straight on the driver).
- Ownership: the `ownership` subpackage (leases, membership, the read-only
  view for routing); `clock` is the time everything reads.
"""
