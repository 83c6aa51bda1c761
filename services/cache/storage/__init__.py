"""The database under the store (SQLite or PostgreSQL); every call here blocks.

- `db`: `CacheDb`, SQLAlchemy Core over the tables; `tables`: the schema;
- `writes`: the write operations, their outcomes, the one branch on their kind;
- `group_commit`: one writer thread, one transaction per group of writes;
- `readers`: database reads on a small thread pool;
- `db_link`: whether the database answers (one log line per change);
- `replication`: whether PostgreSQL replicates synchronously (checked at start).
"""
