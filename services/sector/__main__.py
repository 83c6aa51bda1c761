"""`python -m services.sector`: run SectorService."""

from __future__ import annotations

from services.common import event_loop
from services.common.config import Env, load_or_exit
from services.common.logsetup import configure_logging
from services.sector.config import SectorSettings
from services.sector.server import serve


def main() -> None:
    env = Env()
    configure_logging(env, service="sector")
    settings = load_or_exit(lambda: SectorSettings.from_env(env))
    event_loop.run(serve(settings, env))


if __name__ == "__main__":
    main()
