"""`python -m services.cli` and the `marketcache` console script."""

from __future__ import annotations

from services.cli.app import main

if __name__ == "__main__":
    main()

__all__ = ["main"]
