"""The `marketcache` command line: a redis-cli for the cache.

Map: `app` (the group, global options, exit codes), `session` (a CacheClient
per command run), `output` (JSON off a terminal, rich tables on one),
`commands/` (one module per family: `keys`, `stats`, `transfer`; `COMMANDS`
there lists them all).
"""
