"""Every fault of the fake upstream, with the cache up (a stale copy) and down (no copy).

With a stale copy the answer is that copy, marked stale (or the documented
answer for a vanished symbol); with the cache down it is the documented
status: UNAVAILABLE for an outage, RESOURCE_EXHAUSTED for a rate limit,
FAILED_PRECONDITION for a refused API key, NOT_FOUND for an unknown symbol.
Never INTERNAL, UNKNOWN or a hang. After every fault the provider's breaker
closes again, after the cache comes back its breaker does too, and no
process crashed.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from harness.fakes.upstream import FAULTS
from marketcache.v1 import market_data_pb2 as md
from marketcache.v1 import market_data_pb2_grpc, sector_pb2, sector_pb2_grpc
from tests.conftest import free_port
from tests.reliability.records import nothing_lost, record
from tests.reliability.upstream_process import UpstreamProcess, upstream_process
from tests.support.processes import ServiceProcess, running, start_service

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.e2e]

C = grpc.StatusCode
API_KEY = "fault-test-key"
# What a request may answer under each fault when no cached copy can help.
WITHOUT_COPY: dict[str, set[grpc.StatusCode]] = {
    "http500": {C.UNAVAILABLE},
    "http503": {C.UNAVAILABLE},
    "timeout": {C.UNAVAILABLE},
    "garbage": {C.UNAVAILABLE},
    "rate_limit": {C.RESOURCE_EXHAUSTED},
    "rate_limit_info": {C.RESOURCE_EXHAUSTED},
    "bad_key": {C.FAILED_PRECONDITION},
    "empty": {C.NOT_FOUND, C.OK},  # an empty news page is a fine answer
    "slow": {C.OK},
}
# Two symbols per fault: one cached before the fault, one asked only while the cache is down.
SYMBOLS = ("XLB", "XLC", "XLE", "XLF", "XLI", "XLK", "XLP", "XLRE", "XLU")
SYMBOLS_UNCACHED = ("XLV", "XLY", "SPY", "QQQ", "AAPL", "MSFT", "GOOGL", "AMZN", "NVDA")
HEALING_SYMBOL = "META"
TIMEOUT = 30.0


@dataclass
class Outcome:
    """What one call answered."""

    code: grpc.StatusCode
    stale: bool = False
    cached: bool = False
    details: str = ""


@dataclass
class Tally:
    """Outcomes per fault and cache state, and whatever broke the contract."""

    seen: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    upstream_calls: dict[str, int] = field(default_factory=dict)


class Market:
    """Calls GetQuote, GetHistory and GetNews and reduces each answer to an Outcome."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = market_data_pb2_grpc.MarketDataServiceStub(channel)

    def calls(self, symbol: str) -> dict[str, Callable[[], Outcome]]:
        return {
            "quote": lambda: self._one(self.stub.GetQuote, md.GetQuoteRequest(symbol=symbol)),
            "history": lambda: self._one(
                self.stub.GetHistory, md.GetHistoryRequest(symbol=symbol, days=5)
            ),
            "news": lambda: self._one(self.stub.GetNews, md.GetNewsRequest(symbol=symbol)),
        }

    @staticmethod
    def _one(rpc: Callable[..., object], message: object) -> Outcome:
        try:
            reply = rpc(message, timeout=TIMEOUT)
        except grpc.RpcError as exc:
            return Outcome(exc.code(), details=exc.details() or "")
        provenance = reply.provenance  # type: ignore[attr-defined]
        return Outcome(C.OK, stale=provenance.stale, cached=provenance.cached)


def poll(call: Callable[[], Outcome], done: Callable[[Outcome], bool], within: float) -> Outcome:
    """Call until `done(outcome)`, within a deadline; the last outcome either way."""
    deadline = time.monotonic() + within
    while True:
        outcome = call()
        if done(outcome) or time.monotonic() > deadline:
            return outcome
        time.sleep(0.05)


def _fresh(outcome: Outcome) -> bool:
    return outcome.code is C.OK and not outcome.stale


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamProcess]:
    with upstream_process(tmp_path / "upstream", api_key=API_KEY) as up:
        yield up


def _market_env(upstream: UpstreamProcess, cache_addr: str) -> dict[str, str]:
    return {
        "MARKET_DATA_LISTEN": "127.0.0.1:0",
        "MARKET_DATA_METRICS_LISTEN": "127.0.0.1:0",
        "MARKET_PROVIDER": "fmp",
        "FMP_API_KEY": API_KEY,
        "FMP_BASE_URL": upstream.url,
        "NEWSAPI_KEY": API_KEY,
        "NEWSAPI_BASE_URL": upstream.url,
        # A mid-session instant: the 1 s regular-hours TTLs apply whatever the wall clock says.
        "MARKET_NOW": "2025-01-15T11:00:00-05:00",
        # Stale-if-error alone: no stale-while-revalidate answer or early refresh
        # stands between a fault and what the caller sees (those have their own tests).
        "MARKET_STALE_WHILE_REVALIDATE": "0",
        "MARKET_REFRESH_AHEAD_BETA": "0",
        # Fresh for a second, so a cached copy turns stale within the test.
        "MARKET_TTL_QUOTE": "1",
        "MARKET_TTL_HISTORY": "1",
        "MARKET_TTL_NEWS": "1",
        # "empty" is cached as a negative answer; short, so the symbol comes back soon after.
        "MARKET_TTL_NEGATIVE": "1",
        "MARKET_UPSTREAM_TIMEOUT": "0.5",
        "MARKET_RETRY_BASE_SECONDS": "0.01",
        "MARKET_RETRY_MAX_SECONDS": "0.05",
        "MARKET_BREAKER_RESET_SECONDS": "0.5",
        "MARKET_CACHE_BREAKER_RESET_SECONDS": "0.5",
        "MARKET_RATE_LIMIT_PER_MINUTE": "0",
        "CACHE_ADDR": cache_addr,
        "CACHE_CLIENT_TIMEOUT": "2",
    }


def _breaker_states(market: ServiceProcess) -> dict[str, float]:
    url = f"http://127.0.0.1:{market.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    states = {}
    for line in text.splitlines():
        if line.startswith("market_breaker_state{"):
            labels, value = line.rsplit(" ", 1)
            states[labels.split('provider="', 1)[1].split('"', 1)[0]] = float(value)
    return states


def test_every_upstream_fault_with_the_cache_up_and_down(
    tmp_path: Path, upstream: UpstreamProcess
) -> None:
    cache_addr = f"127.0.0.1:{free_port()}"
    cache_env = {
        "CACHE_LISTEN": cache_addr,
        "CACHE_METRICS_LISTEN": "127.0.0.1:0",
        "CACHE_DB_URL": f"sqlite:///{tmp_path / 'cache.db'}",
    }
    tally = Tally()
    cache = start_service("cache", cache_env, tmp_path / "cache")
    try:
        with (
            running("market_data", _market_env(upstream, cache_addr), tmp_path / "md") as market,
            running(
                "sector",
                {
                    "SECTOR_LISTEN": "127.0.0.1:0",
                    "SECTOR_METRICS_LISTEN": "127.0.0.1:0",
                    "CACHE_ADDR": cache_addr,
                    "MARKET_DATA_ADDR": market.grpc_address,
                    "SECTOR_CACHE_RETRY_SECONDS": "0.5",
                },
                tmp_path / "sector",
            ) as sector,
            grpc.insecure_channel(market.grpc_address) as channel,
            grpc.insecure_channel(sector.grpc_address) as sector_channel,
        ):
            api = Market(channel)
            sectors = sector_pb2_grpc.SectorServiceStub(sector_channel)
            for symbol in SYMBOLS:  # cache a copy of everything while all is well
                for name, call in api.calls(symbol).items():
                    outcome = call()
                    assert outcome.code is C.OK, (symbol, name, outcome)
            for fault, symbol in zip(FAULTS, SYMBOLS, strict=True):
                _with_stale_copy(api, upstream, fault, symbol, tally)
            cache.kill9()
            for fault, symbol in zip(FAULTS, SYMBOLS_UNCACHED, strict=True):
                _with_cache_down(api, sectors, upstream, fault=fault, symbol=symbol, tally=tally)
            # Everything heals: the cache comes back on its address, its breaker closes.
            cache = start_service("cache", cache_env, tmp_path / "cache", label="cache-again")
            quote = api.calls(HEALING_SYMBOL)["quote"]
            healed = poll(quote, lambda o: o.code is C.OK and o.cached, within=20)
            states = _breaker_states(market)
            alive = {
                "market_data": market.popen.poll() is None,
                "sector": sector.popen.poll() is None,
                "upstream": upstream.popen.poll() is None,
            }
            logs = market.log() + sector.log()
    finally:
        cache.stop()
    unexpected = [line for line in logs.splitlines() if "Unexpected [" in line]
    lost = len(tally.wrong) + (not healed.cached) + sum(not a for a in alive.values())
    record(
        "upstream faults x cache up/down (market_data, sector)",
        tried=(
            "each fake-upstream fault (http500, http503, timeout, slow, garbage, rate_limit, "
            "rate_limit_info, empty, bad_key) on quote, history and news: with the cache up and "
            "a stale copy (must serve it marked stale), and with the cache killed (must answer "
            "the documented status, SectorService too); then breaker and cache recovery"
        ),
        cases=f"{sum(tally.seen.values())} calls over {len(FAULTS)} faults x 2 cache states",
        lost=nothing_lost(lost + len(unexpected), "wrong answers, crashes or no recovery"),
        figures={
            "answers": dict(sorted(tally.seen.items())),
            "upstream calls per fault": tally.upstream_calls,
            "breaker states at the end (0 closed)": states,
            "processes alive at the end": alive,
            "wrong": tally.wrong[:20],
        },
        passed=not lost and not unexpected,
    )
    assert not tally.wrong, "\n".join(tally.wrong)
    assert healed.code is C.OK and healed.cached, healed
    assert all(alive.values()), alive
    assert states and all(value == 0 for value in states.values()), states
    assert not unexpected, unexpected
    # Each fault reached the upstream: the fault paths ran, not only the breaker's.
    assert all(calls > 0 for calls in tally.upstream_calls.values()), tally.upstream_calls


def _with_stale_copy(
    api: Market, upstream: UpstreamProcess, fault: str, symbol: str, tally: Tally
) -> None:
    before = upstream.calls()
    upstream.fault(fault, delay_ms=200 if fault == "slow" else 0)
    try:
        for name, call in api.calls(symbol).items():
            # The copy is fresh for a second: ask until the upstream has been asked.
            outcome = poll(call, lambda o: not (o.code is C.OK and o.cached and not o.stale), 15)
            tally.seen[f"cache up, {fault}: {_label(outcome)}"] += 1
            if fault == "slow":
                ok = _fresh(outcome)
            elif fault == "empty":
                ok = outcome.code is C.NOT_FOUND or (name == "news" and outcome.code is C.OK)
            else:
                ok = outcome.code is C.OK and outcome.stale
            if not ok:
                tally.wrong.append(f"cache up, {fault}, {name}: {outcome}")
    finally:
        tally.upstream_calls[f"{fault} (cache up)"] = upstream.calls() - before
        upstream.clear()
    _recovered(api, symbol, fault, tally)


def _with_cache_down(
    api: Market,
    sectors: sector_pb2_grpc.SectorServiceStub,
    upstream: UpstreamProcess,
    *,
    fault: str,
    symbol: str,
    tally: Tally,
) -> None:
    before = upstream.calls()
    upstream.fault(fault, delay_ms=200 if fault == "slow" else 0)
    allowed = WITHOUT_COPY[fault]
    try:
        for name, call in api.calls(symbol).items():
            outcome = call()
            tally.seen[f"cache down, {fault}: {_label(outcome)}"] += 1
            if outcome.code not in allowed or outcome.stale:
                tally.wrong.append(f"cache down, {fault}, {name}: {outcome}")
        try:
            sectors.GetSectorData(sector_pb2.GetSectorDataRequest(symbol="XLK"), timeout=TIMEOUT)
            code = C.OK
        except grpc.RpcError as exc:
            code = exc.code()
        tally.seen[f"cache down, {fault}: sector {code.name}"] += 1
        if code not in allowed | {C.UNAVAILABLE}:
            tally.wrong.append(f"cache down, {fault}, SectorService.GetSectorData: {code.name}")
    finally:
        tally.upstream_calls[f"{fault} (cache down)"] = upstream.calls() - before
        upstream.clear()
    _recovered(api, symbol, fault, tally)


def _recovered(api: Market, symbol: str, fault: str, tally: Tally) -> None:
    """With the fault cleared, both providers' breakers let fresh answers through again."""
    for name, call in api.calls(symbol).items():
        outcome = poll(call, _fresh, within=15)
        if not _fresh(outcome):
            tally.wrong.append(f"no recovery of {name} after {fault}: {outcome}")


def _label(outcome: Outcome) -> str:
    if outcome.code is not C.OK:
        return outcome.code.name
    return "OK stale" if outcome.stale else ("OK cached" if outcome.cached else "OK fresh")
