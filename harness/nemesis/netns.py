"""Partitions between processes in network namespaces: veth pairs on a bridge, iptables DROP.

`NetnsLab` makes one namespace per member and one for a bridge, each member
linked to the bridge by a veth pair, all in a /24 of 10.0.0.0/8 that no address
or route of this host overlaps; with `host=True` the test's own namespace gets an
address on the bridge too (`host_ip`), so it reaches every member directly and
they reach what listens there. `command(member)` is the prefix that runs a
process inside a member's namespace. `partition(a, b)` drops every packet between
two members, and `cut_off(member)` every packet of a member's link, one way or
both (iptables rules in the member's namespace, so the kernel answers nothing,
unlike a proxy); `heal()` removes them all. Needs root, `ip` and `iptables`.

Clean-up: names are unique per lab (`mc<6 hex>`, veths `mc<6 hex><n>a|b`), and
every namespace's name ends with the pid of the process that made it. `close()`
removes whatever was made, also after a half-done setup. A run that dies
without it (kill -9, a watchdog's `os._exit`) leaves its namespaces, and with
them a host-side veth holding an address and a route of its /24: a later lab
on the same /24 would have its traffic routed into the dead one. So `setup()`
first removes every lab whose maker is gone (`sweep()`), and picks its /24 clear
of every address and route still on the host (another live run's included).
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Sequence

# A lab's namespace: mc<id>-<what>-p<pid of its maker>.
_NAMESPACE = re.compile(r"^(mc[0-9a-f]{6})-[0-9a-z]+-p([0-9]+)$")
# Any lab's namespace, whatever its naming (an older one's had no pid).
_LAB = re.compile(r"^(mc[0-9a-f]{6})-")
# A lab's veth end in the host's namespace (left there only by a setup cut short).
_HOST_LINK = re.compile(r"^(mc[0-9a-f]{6})[0-9h]*[ab]$")


def available() -> str | None:
    """Why namespaces cannot be used here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "iptables") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else None


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


def _forget(kind: str, name: str) -> None:
    """`ip <kind> del <name>`, whether or not it is still there."""
    subprocess.run(["ip", kind, "del", name], check=False, capture_output=True, timeout=30)


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _run("ip", "netns", "list").splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep() -> list[str]:
    """Remove the namespaces (their veths go with them) of every lab whose maker is
    no longer running, and host-side veths of labs with no namespace left; what was
    removed."""
    removed: list[str] = []
    for ns in _namespaces():
        found = _NAMESPACE.match(ns)
        if found and not _alive(int(found.group(2))):
            _forget("netns", ns)
            removed.append(ns)
    # Links listed before namespaces: a lab makes its links after its first namespace,
    # so a link listed here whose lab has no namespace listed next is a dead lab's.
    listed = _run("ip", "-o", "link", "show").splitlines()
    links = [line.split(":")[1].strip().split("@")[0] for line in listed]
    labs = {m.group(1) for m in map(_LAB.match, _namespaces()) if m}
    for name in links:
        found = _HOST_LINK.match(name)
        if found and found.group(1) not in labs:
            _forget("link", name)
            removed.append(name)
    return removed


def networks_in_use() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this host has an address or a route in."""
    used: list[ipaddress.IPv4Network] = []
    for line in _run("ip", "-4", "-o", "addr", "show").splitlines():
        used.append(ipaddress.IPv4Interface(line.split()[3]).network)
    for line in _run("ip", "-4", "route", "show", "table", "all").splitlines():
        words = line.split()
        if words and words[0] in ("unicast", "local", "broadcast"):
            words = words[1:]
        if words and words[0] != "default":
            try:
                used.append(ipaddress.IPv4Network(words[0], strict=False))
            except ValueError:
                continue
    return used


def pick_subnet(
    rng: random.Random, used: Iterable[ipaddress.IPv4Network], tries: int = 1000
) -> ipaddress.IPv4Network:
    """A /24 of 10.64.0.0-10.249.255.0 that overlaps none of `used`."""
    taken = list(used)
    for _ in range(tries):
        net = ipaddress.IPv4Network(f"10.{rng.randrange(64, 250)}.{rng.randrange(1, 250)}.0/24")
        if not any(net.overlaps(other) for other in taken):
            return net
    raise RuntimeError("no free /24 in 10.0.0.0/8 for a namespace lab")


class NetnsLab:
    """Members in namespaces of their own, on one bridge."""

    def __init__(self, members: Sequence[str], *, host: bool = True) -> None:
        self.id = f"mc{uuid.uuid4().hex[:6]}"
        self.members = list(members)
        self._host = host
        self._pid = os.getpid()
        self.ip: dict[str, str] = {}
        self.host_ip = ""
        self._bridge = self._name("br")
        self._made: list[str] = []
        self._host_link = ""

    def _name(self, what: str) -> str:
        return f"{self.id}-{what}-p{self._pid}"

    def ns(self, member: str) -> str:
        return self._name(str(self.members.index(member)))

    def _device(self, member: str) -> str:
        """`member`'s end of its veth pair, inside its namespace."""
        return f"{self.id}{self.members.index(member)}b"

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
        sweep()
        net = pick_subnet(random.Random(), networks_in_use())
        hosts = list(net.hosts())
        self.ip = {m: str(hosts[i]) for i, m in enumerate(self.members)}
        self.host_ip = str(hosts[-1])
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

    def _drop(self, member: str, chain: str, *match: str) -> None:
        _run(*self.command(member), "iptables", "-A", chain, *match, "-j", "DROP")

    def partition(self, a: str, b: str) -> None:
        """Drop every packet between members `a` and `b`, both ways (sockets stay open)."""
        for here, there in ((a, b), (b, a)):
            self._drop(here, "INPUT", "-s", self.ip[there])
            self._drop(here, "OUTPUT", "-d", self.ip[there])

    def isolate(self, member: str) -> None:
        """Partition `member` from every other member."""
        for other in self.members:
            if other != member:
                self.partition(member, other)

    def cut_off(self, member: str, *, inbound: bool = True, outbound: bool = True) -> None:
        """Drop every packet `member` receives (inbound) and sends (outbound) on its
        link: it is cut from the other members and from the host, sockets open.
        (Its own loopback goes on.)"""
        if inbound:
            self._drop(member, "INPUT", "-i", self._device(member))
        if outbound:
            self._drop(member, "OUTPUT", "-o", self._device(member))

    def heal(self) -> None:
        """Remove every partition."""
        for member in self.members:
            for chain in ("INPUT", "OUTPUT"):
                _run(*self.command(member), "iptables", "-F", chain)

    def close(self) -> None:
        """Delete every namespace made (their veths go with them) and our own link."""
        if self._host_link:
            _forget("link", f"{self._host_link}b")
            self._host_link = ""
        for ns in reversed(self._made):
            _forget("netns", ns)
        self._made.clear()

    def exists(self) -> list[str]:
        """The lab's namespaces the system still lists."""
        return [ns for ns in _namespaces() if ns.startswith(self.id)]


def labs_of(pid: int) -> list[str]:
    """The namespaces of labs made by process `pid` that the system still lists."""
    return [ns for ns in _namespaces() if (m := _NAMESPACE.match(ns)) and int(m.group(2)) == pid]
