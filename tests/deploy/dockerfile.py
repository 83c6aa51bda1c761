"""Read a Dockerfile's instructions and a .dockerignore's effect without a Docker engine."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    arguments: str

    def words(self) -> list[str]:
        """The arguments in exec form (JSON array) or split like a shell would."""
        text = self.arguments.strip()
        if text.startswith("["):
            words: list[str] = json.loads(text)
            return words
        return shlex.split(text)


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile (comments and blank lines dropped)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions grouped by build stage, each starting with its FROM."""
    grouped: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(instruction)
    return grouped


def ignore_patterns(text: str) -> list[tuple[str, bool]]:
    """(pattern, excludes) of a .dockerignore, in order; `!` re-includes."""
    rules: list[tuple[str, bool]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((pattern, not negated))
    return rules


def _regex(pattern: str) -> re.Pattern[str]:
    # Docker's syntax: `**` crosses directories, `*` and `?` do not.
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _matches(pattern: str, path: str) -> bool:
    # A pattern matches the path or any of its parent directories, so
    # excluding a directory excludes everything inside it.
    regex = _regex(pattern)
    parts = path.split("/")
    return any(regex.fullmatch("/".join(parts[: i + 1])) for i in range(len(parts)))


def _excluded(rules: list[tuple[str, bool]], path: str) -> bool:
    excluded = False
    for pattern, excludes in rules:
        if _matches(pattern, path):
            excluded = excludes
    return excluded


def _may_reinclude_inside(rules: list[tuple[str, bool]], directory: str) -> bool:
    # Whether some `!pattern` could match a path below an excluded directory;
    # if none can, the walk skips the directory (.venv is large).
    depth = directory.count("/") + 1
    for pattern, excludes in rules:
        if excludes:
            continue
        if "**" in pattern:
            return True
        segments = pattern.split("/")
        head = "/".join(segments[:depth])
        if len(segments) > depth and _regex(head).fullmatch(directory):
            return True
    return False


def context_files(root: Path, dockerignore: str) -> list[str]:
    """The repository files `docker build` would send as its context."""
    rules = ignore_patterns(dockerignore)
    kept: list[str] = []
    for current, directories, files in os.walk(root):
        base = Path(current).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        directories[:] = [
            d
            for d in sorted(directories)
            if d != ".git"
            and not (_excluded(rules, prefix + d) and not _may_reinclude_inside(rules, prefix + d))
        ]
        kept.extend(prefix + f for f in sorted(files) if not _excluded(rules, prefix + f))
    return sorted(kept)
