"""Headless Chromium from Debian's packages, driven by Playwright (never `playwright install`).

Under CI=true a missing browser fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

# Generous: the machine is shared, and the first snapshot warms the caches.
WAIT_MS = 60_000
# Debian's `chromium` package (installed by `make deps`); override for another build.
CHROMIUM = os.environ.get("MARKETCACHE_CHROMIUM", "/usr/bin/chromium")


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: browser tests must run; `make deps` installs chromium)")
    pytest.skip(message)


def chromium_path() -> str:
    """The Chromium executable, or fail (CI) / skip (elsewhere) saying what is missing."""
    found = shutil.which(CHROMIUM)
    if found is None:
        _missing(f"Chromium not found at {CHROMIUM} (Debian package `chromium`)")
    return str(found)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the duration of a `with` block."""
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"Playwright for Python is not installed ({exc}); `make venv` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page and everything it asked for: request URLs, console errors, failed loads."""

    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def paths(self, base: str) -> set[str]:
        """The paths (no query) of the requests made to `base`."""
        return {url.split("?")[0].removeprefix(base) for url in self.requests}

    def outside(self, base: str) -> list[str]:
        """Requests whose origin is not `base` (data: URLs never leave the page)."""
        origin = urlsplit(base)[:2]
        return [
            url
            for url in self.requests
            if not url.startswith("data:") and urlsplit(url)[:2] != origin
        ]


def watched_page(browser: Browser, width: int = 1280, height: int = 800) -> Watched:
    """A new page that records its requests, console errors and failed requests."""
    page = browser.new_page(viewport={"width": width, "height": height})
    watched = Watched(page)
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on(
        "console",
        lambda message: watched.errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("requestfailed", lambda request: watched.errors.append(f"failed: {request.url}"))
    return watched


def sector_tiles(page: Page) -> Locator:
    """The dashboard's heat map tiles, once all eleven sectors are drawn."""
    tiles = page.locator("#heatmap li.tile")
    tiles.nth(10).wait_for(state="visible", timeout=WAIT_MS)
    return tiles
