"""The web face of the whole system as `make run` starts it: pages, reflection v1, the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.launched import Launched, launcher_running
from tests.gateway.browser import WAIT_MS, chromium, sector_tiles, watched_page
from tests.gateway.stack import request

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launched]:
    with launcher_running(tmp_path_factory.mktemp("web-face")) as launched:
        yield launched


def test_pages_answer_on_the_launched_gateway(system: Launched) -> None:
    for path in ("/", "/docs", "/dashboard"):
        reply = request(system.url, "GET", path)
        assert reply.status == 200, path
        assert reply.headers["Content-Type"].startswith("text/html"), path
    landing = request(system.url, "GET", "/").body
    assert landing.count('<span class="badge up">SERVING</span>') == 3, landing


def test_dashboard_in_a_browser_against_the_launched_system(
    system: Launched, tmp_path: Path
) -> None:
    with chromium() as browser:
        watched = watched_page(browser)
        page = watched.page
        page.goto(f"{system.url}/dashboard")
        assert sector_tiles(page).count() == 11
        page.locator("#prefixes tbody tr[data-prefix]").first.wait_for(timeout=WAIT_MS)
        page.screenshot(path=str(tmp_path / "dashboard.png"))
        assert watched.outside(system.url) == [], watched.requests
        assert watched.errors == []
