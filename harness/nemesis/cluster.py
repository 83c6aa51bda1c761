"""Three cache processes on one database, every link of theirs behind a blackhole proxy.

Each node listens on a port of its own and advertises a proxy in front of it, so
peers' forwards, clients' calls and Watch streams all cross `node_proxy[name]`;
on PostgreSQL its database link crosses `db_proxy[name]` too. A node killed with
-9 starts again on the same port, behind the same proxies. On SQLite the file may
sit on a size-limited tmpfs of its own (`small_disk`), for the full-disk fault.

With `netns_node`, that node runs inside a network namespace of its own (a
`NetnsLab`: a veth pair to a bridge the host is on too), for the whole run, so
that iptables rules there cut it off at the kernel level. Then every proxy
listens on the host's address on that bridge, not 127.0.0.1, so the namespaced
node reaches its peers and PostgreSQL through them; the namespaced node itself
listens and is advertised at its namespace's address, with no proxy in front:
clients and peers reach it directly, and a cut there is a kernel's silence to
them too (no proxy acknowledges for it).
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from harness.nemesis.netns import NetnsLab
from harness.nemesis.proxy import BlackholeProxy
from harness.process import ServiceProcess
from harness.readiness import wait_ready
from harness.services import start_service

NODES = ("node0", "node1", "node2")
# Where fresh_postgres makes and drops each run's database (the machine's PostgreSQL).
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN_TOKEN = "nemesis-admin"


def free_port() -> int:
    """A port nobody listens on right now (a node restarts on the same one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_postgres(admin_dsn: str) -> Iterator[str]:
    """A new database on the server of `admin_dsn`; its SQLAlchemy URL; dropped afterwards."""
    name = f"mc_nemesis_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class NemesisCluster:
    """The nodes, their proxies, and how to start them again."""

    def __init__(
        self,
        db_url: str,
        workdir: Path,
        lease_seconds: float,
        small_disk: Path | None = None,
        *,
        netns_node: str | None = None,
    ) -> None:
        self.db_url = db_url
        self.workdir = workdir
        self.lease_seconds = lease_seconds
        # The tmpfs mount (a directory) holding the SQLite file and nothing else, if any.
        self.small_disk = small_disk
        self.dialect = make_url(db_url).get_backend_name()
        self.nodes: dict[str, ServiceProcess] = {}
        # The node in a namespace of its own, and the lab that holds it (closed by close()).
        self.netns_node = netns_node
        self.lab: NetnsLab | None = None
        self.node_proxy: dict[str, BlackholeProxy] = {}
        self.db_proxy: dict[str, BlackholeProxy] = {}
        try:
            self._setup()
        except BaseException:
            self._close_links()
            raise
        self._starts = 0

    def _setup(self) -> None:
        host = "127.0.0.1"
        if self.netns_node is not None:
            self.lab = NetnsLab([self.netns_node])
            self.lab.setup()
            host = self.lab.host_ip
        # The proxies listen first: a port picked for a node and released, then taken
        # by a proxy's bind to port 0, would leave the node unable to listen.
        for name in NODES:
            if name != self.netns_node:
                self.node_proxy[name] = BlackholeProxy("127.0.0.1", 0, listen_host=host).start()
        self.ports = {name: free_port() for name in NODES}
        for name, proxy in self.node_proxy.items():
            proxy.retarget("127.0.0.1", self.ports[name])
        if self.dialect == "postgresql":
            url = make_url(self.db_url)
            for name in NODES:
                self.db_proxy[name] = BlackholeProxy(
                    url.host or "127.0.0.1", url.port or 5432, listen_host=host
                ).start()

    def host(self, name: str) -> str:
        """The address `name` itself listens on: its namespace's, or 127.0.0.1."""
        if self.lab is not None and name == self.netns_node:
            return self.lab.ip[name]
        return "127.0.0.1"

    def direct(self, name: str) -> str:
        """Where `name` itself listens (not through its proxy)."""
        return f"{self.host(name)}:{self.ports[name]}"

    def address(self, name: str) -> str:
        """Where clients and peers reach `name`: its proxy (the namespaced node: itself)."""
        proxy = self.node_proxy.get(name)
        return proxy.address if proxy is not None else self.direct(name)

    def _env(self, name: str) -> dict[str, str]:
        db_url = self.db_url
        if name in self.db_proxy:
            proxy = self.db_proxy[name]
            proxied = make_url(db_url).set(host=proxy.address.rsplit(":", 1)[0], port=proxy.port)
            db_url = proxied.render_as_string(hide_password=False)
        return {
            "CACHE_LISTEN": self.direct(name),
            "CACHE_ADVERTISE_ADDR": self.address(name),
            "CACHE_METRICS_LISTEN": f"{self.host(name)}:0",
            "CACHE_DB_URL": db_url,
            "CACHE_NODE_ID": name,
            "CACHE_LEASE_SECONDS": str(self.lease_seconds),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "GRPC_DRAIN_SECONDS": "1",
        }

    def spawn(self, name: str, extra_env: Mapping[str, str] | None = None) -> ServiceProcess:
        """Start `name` (again) without waiting; `extra_env` for this start only (a fault's
        clock or disk, say)."""
        self._starts += 1
        env = {**self._env(name), **(extra_env or {})}
        prefix = self.lab.command(name) if self.lab is not None and name == self.netns_node else []
        label = f"{name}-{self._starts}"
        proc = start_service("cache", env, self.workdir, wait=False, label=label, prefix=prefix)
        self.nodes[name] = proc
        return proc

    async def start(
        self, name: str, within: float = 60.0, extra_env: Mapping[str, str] | None = None
    ) -> ServiceProcess:
        """Start `name` and wait until it serves."""
        proc = self.spawn(name, extra_env)
        await asyncio.to_thread(wait_ready, proc, within)
        return proc

    async def start_all(self) -> None:
        procs = [self.spawn(name) for name in NODES]
        for proc in procs:
            await asyncio.to_thread(wait_ready, proc, 90.0)

    def logs(self) -> str:
        """Every log of every node started so far."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*.log")))

    async def close(self) -> None:
        try:
            for proxy in [*self.node_proxy.values(), *self.db_proxy.values()]:
                proxy.heal()
            for proc in self.nodes.values():
                await asyncio.to_thread(proc.stop)
        finally:
            self._close_links()

    def _close_links(self) -> None:
        """Close the proxies, and remove the namespace with its veths and rules."""
        try:
            for proxy in [*self.node_proxy.values(), *self.db_proxy.values()]:
                proxy.close()
        finally:
            if self.lab is not None:
                self.lab.close()
