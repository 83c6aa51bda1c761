"""The database under the store (SQLite or PostgreSQL); every call here blocks.

- `db`: `CacheDb`, SQLAlchemy Core over the tables; `tables`: the schema;
- `writes`: the write operations, their outcomes, the one branch on their kind;
- `group_commit`: one writer thread, one transaction per group of writes;
- `sqlite_writer`: on SQLite, a group of Sets on the driver directly (the fence, one
  multi-row upsert per 64 rows);
- `readers`: database reads on a small thread pool;
- `db_link`: whether the database answers (one log line per change);
- `replication`: whether PostgreSQL replicates synchronously (checked at start);
- `disk`: a full disk or the `CACHE_DB_MAX_BYTES` quota (the alarm, the reserve that
  keeps lease heartbeats renewing, recovery);
- `pg_session`: PostgreSQL session settings (keepalives, `tcp_user_timeout`, the
  session's name that carries the lease token);
- `db_watchdog`: ends a connection checked out past two leases (a silent link).
"""
