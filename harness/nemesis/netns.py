"""Partitions between processes in network namespaces: veth pairs on a bridge, iptables DROP.

`NetnsLab` makes one namespace per member and one for a bridge, each member
linked to the bridge by a veth pair, all in a /24 of 10.0.0.0/8 picked at
random; with `host=True` the test's own namespace gets an address on the bridge
too, so it reaches every member directly. `command(member)` is the prefix that
runs a process inside a member's namespace. `partition(a, b)` drops every
packet between two members (iptables rules in each one's namespace, so the
kernel answers nothing, unlike a proxy); `heal()` removes them all. Names are
unique per lab (`mc<6 hex>`), and `close()` removes whatever was made, also
after a half-done setup. Needs root, `ip` and `iptables`.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Sequence


def available() -> str | None:
    """Why namespaces cannot be used here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "iptables") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else None


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)


class NetnsLab:
    """Members in namespaces of their own, on one bridge."""

    def __init__(self, members: Sequence[str], *, host: bool = True) -> None:
        self.id = f"mc{uuid.uuid4().hex[:6]}"
        self.members = list(members)
        self._host = host
        net = f"10.{random.randrange(64, 250)}.{random.randrange(1, 250)}"
        self.ip = {m: f"{net}.{i + 1}" for i, m in enumerate(self.members)}
        self.host_ip = f"{net}.254"
        self._bridge = f"{self.id}-br"
        self._made: list[str] = []
        self._host_link = ""

    def ns(self, member: str) -> str:
        return f"{self.id}-{self.members.index(member)}"

    def command(self, member: str) -> list[str]:
        """The prefix that runs a command inside `member`'s namespace."""
        return ["ip", "netns", "exec", self.ns(member)]

    def __enter__(self) -> NetnsLab:
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def setup(self) -> None:
        _run("ip", "netns", "add", self._bridge)
        self._made.append(self._bridge)
        _run("ip", "-n", self._bridge, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self._bridge, "link", "set", "br0", "up")
        for index, member in enumerate(self.members):
            ns = self.ns(member)
            _run("ip", "netns", "add", ns)
            self._made.append(ns)
            self._link(f"{self.id}{index}", ns, self.ip[member])
        if self._host:
            self._host_link = f"{self.id}h"
            self._link(self._host_link, None, self.host_ip)

    def _link(self, name: str, ns: str | None, address: str) -> None:
        """A veth pair: `<name>a` on the bridge, `<name>b` in `ns` (None: ours) at `address`."""
        outer, inner = f"{name}a", f"{name}b"
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        _run("ip", "link", "set", outer, "netns", self._bridge)
        _run("ip", "-n", self._bridge, "link", "set", outer, "master", "br0", "up")
        where = ["-n", ns] if ns is not None else []
        if ns is not None:
            _run("ip", "link", "set", inner, "netns", ns)
            _run("ip", *where, "link", "set", "lo", "up")
        _run("ip", *where, "addr", "add", f"{address}/24", "dev", inner)
        _run("ip", *where, "link", "set", inner, "up")

    def partition(self, a: str, b: str) -> None:
        """Drop every packet between members `a` and `b`, both ways (sockets stay open)."""
        for here, there in ((a, b), (b, a)):
            for chain, flag in (("INPUT", "-s"), ("OUTPUT", "-d")):
                _run(
                    *self.command(here), "iptables", "-A", chain, flag, self.ip[there], "-j", "DROP"
                )

    def isolate(self, member: str) -> None:
        """Partition `member` from every other member."""
        for other in self.members:
            if other != member:
                self.partition(member, other)

    def heal(self) -> None:
        """Remove every partition."""
        for member in self.members:
            for chain in ("INPUT", "OUTPUT"):
                _run(*self.command(member), "iptables", "-F", chain)

    def close(self) -> None:
        """Delete every namespace made (their veths go with them) and our own link."""
        if self._host_link:
            subprocess.run(
                ["ip", "link", "del", f"{self._host_link}b"],
                check=False,
                capture_output=True,
                timeout=30,
            )
            self._host_link = ""
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True, timeout=30)
        self._made.clear()

    def exists(self) -> list[str]:
        """The lab's namespaces the system still lists."""
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
        return [line.split()[0] for line in listed.splitlines() if line.startswith(self.id)]
