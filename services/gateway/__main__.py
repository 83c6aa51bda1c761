"""`python -m services.gateway`: the REST shim in front of the gRPC services."""

from __future__ import annotations

from services.common import event_loop
from services.common.config import Env, load_or_exit
from services.common.logsetup import configure_logging
from services.gateway.config import GatewaySettings
from services.gateway.server import GatewayServer, process_registry


async def _serve(settings: GatewaySettings) -> None:
    server = GatewayServer(settings, process_registry())
    await server.start()
    await server.run_until_signal()


def main() -> None:
    """Read settings (exit 2 naming a bad variable), then serve until SIGTERM."""
    env = Env()
    load_or_exit(lambda: configure_logging(env, service="gateway"))
    settings = load_or_exit(lambda: GatewaySettings.from_env(env))
    event_loop.run(_serve(settings))


if __name__ == "__main__":
    main()
