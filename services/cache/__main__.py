"""`python -m services.cache`: serve the CacheService until SIGTERM."""

from __future__ import annotations

from services.cache.config import CacheSettings
from services.cache.server import serve
from services.common import event_loop
from services.common.config import Env, load_or_exit
from services.common.logsetup import configure_logging


def main() -> None:
    """Read the settings (exit 2 naming a bad variable), then serve."""
    env = Env()
    settings = load_or_exit(lambda: CacheSettings.from_env(env))
    load_or_exit(lambda: configure_logging(env, service="cache"))
    raise SystemExit(event_loop.run(serve(settings)))


if __name__ == "__main__":
    main()
