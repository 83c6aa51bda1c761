"""Every `marketcache` command; a new one is one import and one entry here."""

from __future__ import annotations

import click

from services.cli.commands.keys import del_, get, mget, scan, set_, ttl
from services.cli.commands.stats import health, latency, owners, stat
from services.cli.commands.transfer import export, import_

COMMANDS: list[click.Command] = [
    get,
    set_,
    del_,
    mget,
    ttl,
    scan,
    stat,
    health,
    owners,
    latency,
    export,
    import_,
]
