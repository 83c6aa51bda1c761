"""Prefixes sharded over several databases (CACHE_DB_URLS).

- `sharded_store`: each prefix's home database, one store cell per database, and
  the store and the ownership view over all of them.
"""
