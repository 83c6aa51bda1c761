"""The client's near cache (docs/near-cache.md): `near_cache.py` holds and trusts
entries, `watch_streams.py` keeps one Watch stream per prefix held."""
