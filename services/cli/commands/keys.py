"""Commands on keys: get, set, del, mget, ttl, scan."""

from __future__ import annotations

import json
import sys

import click

from services.cli.output import json_line, show, table, to_terminal
from services.cli.session import MISS, Target
from services.client import CacheClient, CacheEntry
from services.common.json_value import JSON


@click.command()
@click.argument("key")
@click.pass_obj
def get(target: Target, key: str) -> None:
    """Print KEY's JSON value; a miss prints nothing and exits 1."""
    show(_entry_or_exit(target, key).value)


def _entry_or_exit(target: Target, key: str) -> CacheEntry:
    """KEY's entry; on a miss, exit 1 having printed nothing."""

    async def work(client: CacheClient) -> CacheEntry | None:
        return await client.get_entry(key)

    entry = target.run(work)
    if entry is None:
        sys.exit(MISS)
    return entry


@click.command(name="set")
@click.argument("key")
@click.argument("value", metavar="JSON")
@click.option(
    "--ttl",
    type=click.IntRange(min=0),
    default=0,
    help="Seconds to live (0: the server's default).",
)
@click.pass_obj
def set_(target: Target, key: str, value: str, ttl: int) -> None:
    """Store the JSON value under KEY."""
    try:
        parsed: JSON = json.loads(value, parse_constant=_not_json)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value[:60]!r} is not JSON ({exc}); quote strings: '\"text\"'", param_hint="JSON"
        ) from None

    async def work(client: CacheClient) -> None:
        await client.set(key, parsed, ttl)

    target.run(work)
    if to_terminal():
        click.echo("OK")
    else:
        json_line({"key": key, "stored": True})


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


@click.command(name="del")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@click.pass_obj
def del_(target: Target, keys: tuple[str, ...]) -> None:
    """Delete keys; prints how many existed."""

    async def work(client: CacheClient) -> int:
        return sum([await client.delete(key) for key in keys])

    deleted = target.run(work)
    if to_terminal():
        click.echo(f"(integer) {deleted}")
    else:
        json_line({"deleted": deleted})


@click.command()
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@click.pass_obj
def mget(target: Target, keys: tuple[str, ...]) -> None:
    """One JSON line per key, in order; a miss is null."""

    async def work(client: CacheClient) -> list[JSON | None]:
        return await client.mget(keys)

    values = target.run(work)
    if to_terminal():
        rows = [
            (key, json.dumps(value, ensure_ascii=False))
            for key, value in zip(keys, values, strict=True)
        ]
        table("mget", ("key", "value"), rows, None)
        return
    for value in values:
        json_line(value)


@click.command()
@click.argument("key")
@click.pass_obj
def ttl(target: Target, key: str) -> None:
    """Seconds KEY has left; a miss prints nothing and exits 1."""
    click.echo(str(_entry_or_exit(target, key).ttl_remaining_seconds))


@click.command()
@click.argument("prefix")
@click.option("--match", default="", help="A glob over the whole key, e.g. 'stock:A*'.")
@click.option(
    "--count",
    type=click.IntRange(min=1, max=1000),
    default=100,
    show_default=True,
    help="Keys per page.",
)
@click.pass_obj
def scan(target: Target, prefix: str, match: str, count: int) -> None:
    """Every key of PREFIX, one per line (pages through the cursor, never KEYS)."""

    async def work(client: CacheClient) -> None:
        async for key in client.scan(prefix, match=match, limit=count):
            click.echo(key)

    target.run(work)
