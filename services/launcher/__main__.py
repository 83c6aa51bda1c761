"""`python -m services.launcher` (what `make run` runs)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from services.common.config import ConfigError
from services.launcher.supervisor import Launcher


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.launcher",
        description="Start cache, market_data, sector and gateway together (`make run`).",
    )
    parser.add_argument(
        "--cache-replicas",
        type=int,
        default=1,
        metavar="N",
        help="cache processes sharing one SQLite file (default 1)",
    )
    parser.add_argument(
        "--prometheus", action="store_true", help="also run a local Prometheus scraping all"
    )
    parser.add_argument(
        "--base-dir", default=".", help="directory of var/ (SQLite, ready files, Prometheus data)"
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=60.0, help="seconds each process may take to start"
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=20.0,
        help="seconds each process may take to stop before it is killed",
    )
    options = parser.parse_args(argv)
    if not 1 <= options.cache_replicas <= 16:
        parser.error("--cache-replicas must be between 1 and 16")
    return options


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or a child's death (exit 1); 2 for bad settings."""
    options = parse_args(argv)
    try:
        launcher = Launcher(options, os.environ, sys.stdout)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(launcher.run())


if __name__ == "__main__":
    raise SystemExit(main())
