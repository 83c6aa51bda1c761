"""Backup and restore: export to JSON Lines, import from them."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from marketcache.v1 import cache_pb2
from services.cli.session import Refused, Target
from services.client import CacheClient, CacheError
from services.common.jsonl import ChunkReader, LineError, entry_line


@click.command()
@click.option("--prefix", default="", help="One prefix (default: every prefix).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: stdout).",
)
@click.pass_obj
def export(target: Target, prefix: str, output: Path | None) -> None:
    """Every live entry as JSON Lines {"key","value","ttlSeconds"} (admin: --token)."""
    with ExitStack() as stack:
        out: IO[str] = (
            sys.stdout
            if output is None
            else stack.enter_context(output.open("w", encoding="utf-8"))
        )

        async def work(client: CacheClient) -> int:
            written = 0
            async for entry in client.export(prefix, token=target.token):
                out.write(entry_line(entry) + "\n")
                written += 1
            return written

        written = target.run(work)
    if output is not None:
        click.echo(f"{written} entries written to {output}", err=True)


@click.command(name="import")
@click.argument("source", metavar="FILE|-", type=click.File("rb"))
@click.pass_obj
def import_(target: Target, source: IO[bytes]) -> None:
    """Entries from JSON Lines, chunk by chunk, each durable before the next (admin: --token)."""
    reader = ChunkReader()
    failed: list[LineError] = []
    with _progress(source) as advance:

        async def chunks() -> AsyncIterator[list[cache_pb2.ExportEntry]]:
            # A bad line ends the stream after the chunks before its own: those
            # are imported; nothing of its chunk is sent.
            try:
                for chunk in reader.chunks(_lines(source, advance)):
                    yield chunk.entries
            except LineError as exc:
                failed.append(exc)

        async def work(client: CacheClient) -> int:
            try:
                return await client.import_entries(chunks(), token=target.token)
            except CacheError as exc:
                if exc.code.name != "INVALID_ARGUMENT":
                    raise
                raise Refused(reader.explain(exc.message)) from None

        imported = target.run(work)
    if failed:
        raise Refused(
            f"{failed[0]}; {imported} entries before its chunk were imported, nothing after"
        )
    click.echo(f"{imported} entries imported", err=True)


def _lines(source: IO[bytes], advance: _Advance) -> Iterator[bytes]:
    for line in source:
        advance(len(line))
        yield line


class _Advance:
    """Moves the progress bar by a number of bytes read (nothing off a terminal)."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def __call__(self, size: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, size)


class _progress:  # noqa: N801 (used as a context manager, like a function)
    """A progress bar over the bytes of `source` when stderr is a terminal."""

    def __init__(self, source: IO[bytes]) -> None:
        self._bar: Progress | None = None
        self._total: int | None = None
        if sys.stderr.isatty():
            try:
                self._total = Path(source.name).stat().st_size
            except (OSError, TypeError, AttributeError):
                self._total = None
            self._bar = Progress(
                TextColumn("importing"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                transient=True,
            )

    def __enter__(self) -> _Advance:
        if self._bar is None:
            return _Advance(None, None)
        self._bar.__enter__()
        return _Advance(self._bar, self._bar.add_task("import", total=self._total))

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
