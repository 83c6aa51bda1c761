"""`python -m services.market_data` and `python -m harness.fakes.upstream` as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from marketcache.v1 import market_data_pb2 as pb
from marketcache.v1 import market_data_pb2_grpc
from tests.support.processes import REPO, ServiceProcess, running, start_service

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake_process(tmp_path: Path) -> Iterator[str]:
    """The fake upstream as a subprocess; yields its base URL."""
    ready = tmp_path / "fake.ready.json"
    log = (tmp_path / "fake.log").open("wb")
    args = ["--port", "0", "--ready-file", str(ready), "--delay-ms", "5"]
    args += ["--api-key", "proc-key", "--today", "2025-01-15"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.fakes.upstream", *args],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None, (tmp_path / "fake.log").read_text()
            assert time.monotonic() < deadline, "fake upstream did not start"
            time.sleep(0.02)
        yield str(json.loads(ready.read_text())["url"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def http_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def market_env(fake_url: str, cache: ServiceProcess) -> dict[str, str]:
    return {
        "MARKET_DATA_LISTEN": "127.0.0.1:0",
        "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
        "MARKET_PROVIDER": "fmp",
        "FMP_API_KEY": "proc-key",
        "FMP_BASE_URL": fake_url,
        "CACHE_ADDR": cache.grpc_address,
    }


def test_the_process_serves_quotes_through_the_cache_and_stops_gracefully(
    tmp_path: Path, fake_process: str
) -> None:
    cache_env = {
        "CACHE_LISTEN": "127.0.0.1:0",
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": f"sqlite:///{tmp_path}/cache.db",
    }
    with running("cache", cache_env, tmp_path / "cache") as cache:
        market = start_service("market_data", market_env(fake_process, cache), tmp_path / "md")
        try:
            with grpc.insecure_channel(market.grpc_address) as channel:
                stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
                first = stub.GetQuote(pb.GetQuoteRequest(symbol="XLK"), timeout=10)
                second = stub.GetQuote(pb.GetQuoteRequest(symbol="XLK"), timeout=10)
            assert first.quote.price == second.quote.price > 0
            assert (first.provenance.cached, second.provenance.cached) == (False, True)
            assert first.provenance.provider == "fmp"
            assert http_json(f"{fake_process}/_control/calls")["total"] == 1
            metrics = f"http://127.0.0.1:{market.metrics_port}/metrics"
            with urllib.request.urlopen(metrics, timeout=10) as response:
                text = response.read().decode()
            assert 'market_cache_requests_total{result="hit"} 1.0' in text
            assert "grpc_server_handled_total" in text
            assert market.terminate() == 0
            assert "proc-key" not in market.log()
        finally:
            market.stop()


@pytest.mark.parametrize(
    ("bad", "line"),
    [
        (
            {"MARKET_PROVIDER": "alphavantage"},
            "ALPHAVANTAGE_API_KEY: required when MARKET_PROVIDER=alphavantage",
        ),
        (
            {"MARKET_NOW": "Friday at noon"},
            "MARKET_NOW: expected an ISO-8601 time like 2026-11-27T10:30:00-05:00, "
            "got 'Friday at noon'",
        ),
    ],
    ids=["provider-without-key", "bad-market-now"],
)
def test_bad_configuration_fails_at_start_naming_the_variable(
    tmp_path: Path, bad: dict[str, str], line: str
) -> None:
    env = {"MARKET_DATA_LISTEN": "127.0.0.1:0", "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0", **bad}
    proc = start_service("market_data", env, tmp_path, wait=False)
    try:
        assert proc.popen.wait(timeout=30) == 2
    finally:
        proc.stop()
    printed = [text for text in proc.log().splitlines() if text.strip()]
    assert printed == [f"configuration error: {line}"]


def test_the_fake_upstream_is_controlled_over_http(fake_process: str) -> None:
    quote_url = f"{fake_process}/stable/quote?symbol=SPY&apikey=proc-key"
    assert http_json(quote_url)[0]["symbol"] == "SPY"
    http_json(f"{fake_process}/_control/fault", {"fault": "http503", "api": "fmp", "times": 1})
    with pytest.raises(urllib.error.HTTPError) as caught:
        http_json(quote_url)
    assert caught.value.code == 503
    assert http_json(quote_url)[0]["symbol"] == "SPY", "the fault applied once"
    calls = http_json(f"{fake_process}/_control/calls")
    assert calls == {"total": 3, "endpoints": {"fmp.stable.quote": 3}}
    assert http_json(f"{fake_process}/_control/reset", {})["total"] == 0
