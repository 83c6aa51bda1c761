"""`python -m services.market_data`: run MarketDataService."""

from __future__ import annotations

from services.common import event_loop
from services.common.config import Env, load_or_exit
from services.common.logsetup import configure_logging
from services.market_data.config import MarketDataSettings
from services.market_data.server import serve


def main() -> None:
    env = Env()
    configure_logging(env, service="market_data")
    settings = load_or_exit(lambda: MarketDataSettings.from_env(env))
    event_loop.run(serve(settings, env))


if __name__ == "__main__":
    main()
