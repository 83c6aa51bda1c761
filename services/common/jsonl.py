"""The export format: JSON Lines, one {"key", "value", "ttlSeconds"} per line, read in chunks.

Shared by the CLI and the gateway, so a file is read alike by both. A chunk is
what one ImportRequest carries: validated whole by the server and written
whole, so a bad line fails its chunk and nothing of it is applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

from marketcache.v1 import cache_pb2
from services.common.json_value import from_value, to_value

# Entries per ImportRequest (the server's batch limit is 1000 by default).
CHUNK_ENTRIES = 500
_FIELDS = frozenset({"key", "value", "ttlSeconds"})
# How the server names the bad entry of a refused chunk ("chunk 3: entries[17].key ...").
_SERVER_ERROR = re.compile(r"^chunk (\d+): .*?entries\[(\d+)\]")


class LineError(ValueError):
    """A line that is not an entry: its number (1-based) and what is wrong with it."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


def entry_line(entry: cache_pb2.ExportEntry) -> str:
    """One entry as its line of JSON (no newline)."""
    payload = {"key": entry.key, "value": from_value(entry.value), "ttlSeconds": entry.ttl_seconds}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON (numbers are finite)")


def parse_line(text: str, line: int) -> cache_pb2.ExportEntry:
    """The entry of one line; LineError naming the line when it is not one."""
    try:
        data: Any = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise LineError(line, f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LineError(line, 'expected an object {"key": ..., "value": ..., "ttlSeconds": ...}')
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise LineError(
            line, f"unknown field(s) {', '.join(unknown)}: expected key, value, ttlSeconds"
        )
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise LineError(line, '"key" must be a non-empty string such as "stock:AAPL"')
    if "value" not in data:
        raise LineError(line, '"value" is missing (any JSON value, null included)')
    ttl = data.get("ttlSeconds", 0)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        raise LineError(line, '"ttlSeconds" must be a whole number of seconds, 0 or more')
    return cache_pb2.ExportEntry(key=key, value=to_value(data["value"]), ttl_seconds=ttl)


@dataclass
class Chunk:
    """Entries for one ImportRequest and the line each came from."""

    lines: list[int] = field(default_factory=list)
    entries: list[cache_pb2.ExportEntry] = field(default_factory=list)


class ChunkReader:
    """Turns lines, fed one at a time, into chunks of at most `size` entries.

    Blank lines are skipped. A bad line raises LineError; the chunk it was part
    of is dropped, so nothing of it is sent.
    """

    def __init__(self, size: int = CHUNK_ENTRIES) -> None:
        self._size = size
        self._chunk = Chunk()
        self.line = 0
        # Line numbers of the chunks handed out, by chunk number (1-based), to
        # name the line of an entry the server refused.
        self._sent: dict[int, list[int]] = {}

    def feed(self, text: str | bytes) -> Chunk | None:
        """Take the next line; returns a chunk when one is full."""
        self.line += 1
        if isinstance(text, bytes):
            try:
                text = text.decode()
            except UnicodeDecodeError:
                raise LineError(self.line, "not UTF-8") from None
        if not text.strip():
            return None
        entry = parse_line(text, self.line)
        self._chunk.lines.append(self.line)
        self._chunk.entries.append(entry)
        if len(self._chunk.entries) >= self._size:
            return self._hand_out()
        return None

    def finish(self) -> Chunk | None:
        """The last, partial chunk (None when there is none)."""
        return self._hand_out() if self._chunk.entries else None

    def _hand_out(self) -> Chunk:
        chunk, self._chunk = self._chunk, Chunk()
        self._sent[len(self._sent) + 1] = chunk.lines
        return chunk

    def explain(self, message: str) -> str:
        """The server's refusal of a chunk, said with the line of the entry it names."""
        found = _SERVER_ERROR.match(message)
        if found is not None:
            lines = self._sent.get(int(found.group(1)), [])
            index = int(found.group(2))
            if index < len(lines):
                return f"line {lines[index]}: {message}"
        return message

    def chunks(self, lines: Iterator[str | bytes]) -> Iterator[Chunk]:
        """Every chunk of `lines`; LineError at the first bad line."""
        for text in lines:
            chunk = self.feed(text)
            if chunk is not None:
                yield chunk
        last = self.finish()
        if last is not None:
            yield last
