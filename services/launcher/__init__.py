"""`make run`: start cache, market_data, sector and gateway together, stream their logs, stop all.

    python -m services.launcher [--cache-replicas N] [--prometheus] [--base-dir DIR]

Children start in dependency order (cache, market_data, sector, gateway), each
on its *_LISTEN address (the defaults in docs/architecture.md unless set; port 0 works), and
each next child gets the addresses the previous ones wrote to their ready file
as *_ADDR. The launcher prints the URLs and the admin token once all are ready,
prefixes every log line with the child's name, and on SIGINT or SIGTERM stops
them in reverse order (SIGTERM, wait, SIGKILL only past --stop-timeout) and
exits 0. A child that dies is reported, the others are stopped, and the exit
code is 1. Variables the user set (MARKET_PROVIDER=fmp, ADMIN_TOKEN, ...) pass through.
"""
