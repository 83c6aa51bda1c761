"""CacheService: a Durable-Objects-style cache with per-prefix gates and group commit."""
