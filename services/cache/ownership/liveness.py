"""Whether a cache process on this host has exited: a dead owner's leases need not expire.

A process is identified by its pid within one boot and one PID namespace; a
process that shares both with us and whose pid is gone (or a zombie) has
exited for certain. Anything else (another host, another namespace, a reused
pid) counts as alive, so a mistake only ever makes a takeover wait for expiry.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


def host_key() -> str:
    """This boot and PID namespace, or "" where that cannot be told (not Linux)."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat(_PROC / "self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def has_exited(pid: int, host: str, here: str) -> bool:
    """True only when `pid` on `host` is certainly no longer running."""
    if not here or host != here or pid <= 0 or pid == os.getpid():
        return False
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    # The state follows the parenthesised command name: Z (zombie) and X (dead)
    # have exited even though their pid still exists.
    state = stat.rpartition(")")[2].split()[:1]
    return state in (["Z"], ["X"])
