"""The gateway in front of all three real services: sectors and market data over REST."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.stack import TOKEN, Stack, gateway_stack, request

pytestmark = pytest.mark.e2e

SECTORS = {"XLB", "XLC", "XLE", "XLF", "XLI", "XLK", "XLP", "XLRE", "XLU", "XLV", "XLY"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with gateway_stack(tmp_path_factory.mktemp("gw-all"), market_data=True, sector=True) as up:
        yield up


def test_readyz_is_200_with_every_backend_serving(stack: Stack) -> None:
    reply = request(stack.url, "GET", "/readyz")
    assert reply.status == 200, reply.body
    assert reply.body["ready"] is True
    assert {b["status"] for b in reply.body["backends"].values()} == {"SERVING"}


def test_snapshot_literal_wins_over_the_symbol_parameter(stack: Stack) -> None:
    reply = request(stack.url, "GET", "/api/v1/sectors/snapshot")
    assert reply.status == 200, reply.body
    assert {s["symbol"] for s in reply.body["sectors"]} == SECTORS
    assert reply.body["benchmark"]["symbol"] == "SPY"
    assert sorted(reply.body["ranking"]) == sorted(SECTORS)
    stats = request(stack.url, "GET", "/api/v1/sectors/cache/stats")
    assert stats.status == 200 and "namespaces" in stats.body


def test_sector_by_symbol_and_list(stack: Stack) -> None:
    one = request(stack.url, "GET", "/api/v1/sectors/XLK")
    assert one.status == 200, one.body
    assert one.body["sector"]["symbol"] == "XLK"
    assert isinstance(one.body["sector"]["volume"], int)
    listed = request(stack.url, "GET", "/api/v1/sectors")
    assert {s["symbol"] for s in listed.body["sectors"]} == SECTORS
    unknown = request(stack.url, "GET", "/api/v1/sectors/NOPE")
    assert unknown.status in (400, 404) and unknown.body["code"] in (3, 5)


def test_quotes_by_comma_list_and_by_repeats(stack: Stack) -> None:
    comma = request(stack.url, "GET", "/api/v1/market/quotes?symbols=AAPL,MSFT")
    repeated = request(stack.url, "GET", "/api/v1/market/quotes?symbols=AAPL&symbols=MSFT")
    assert comma.status == repeated.status == 200, comma.body
    assert [r["symbol"] for r in comma.body["results"]] == ["AAPL", "MSFT"]
    assert [r["symbol"] for r in repeated.body["results"]] == ["AAPL", "MSFT"]
    one = request(stack.url, "GET", "/api/v1/market/quotes/AAPL")
    assert one.status == 200 and one.body["quote"]["symbol"] == "AAPL"
    history = request(stack.url, "GET", "/api/v1/market/history/AAPL?days=5")
    assert history.status == 200 and len(history.body["bars"]) == 5
    bad = request(stack.url, "GET", "/api/v1/market/history/AAPL?days=five")
    assert bad.status == 400 and "days" in bad.body["message"]


def test_sector_admin_routes_check_the_token_at_both_ends(stack: Stack) -> None:
    refused = request(stack.url, "POST", "/api/v1/sectors/cache/warm", {"symbols": ["XLK"]})
    assert (refused.status, refused.body["code"]) == (401, 16)
    warmed = request(
        stack.url, "POST", "/api/v1/sectors/cache/warm", {"symbols": ["XLK"]}, token=TOKEN
    )
    assert warmed.status == 200, warmed.body
    assert "XLK" in warmed.body["symbols"]
    # The sector service checks the Authorization header itself too (it refuses
    # ClearAllCaches without one), so a 200 shows the gateway forwarded it.
    cleared = request(stack.url, "DELETE", "/api/v1/sectors/cache", token=TOKEN)
    assert cleared.status == 200, cleared.body
    assert set(cleared.body["namespaces"]) >= {"sectors", "snapshots"}
    wrong = request(stack.url, "DELETE", "/api/v1/sectors/cache", token="wrong")
    assert (wrong.status, wrong.body["code"]) == (403, 7)
