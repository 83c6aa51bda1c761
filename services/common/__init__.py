"""What every marketcache process shares: config, logging, bootstrap, auth, the cache client."""
