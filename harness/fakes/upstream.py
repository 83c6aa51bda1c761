"""A fake market-data upstream speaking FMP (stable and v3), Alpha Vantage and NewsAPI.

In-process:  `async with FakeUpstream() as fake: ... fake.url ... fake.calls("fmp")`
Subprocess:  `python -m harness.fakes.upstream --port 0 --ready-file F --delay-ms 100`
             (control it over HTTP: POST/DELETE /_control/fault, POST /_control/delay,
             POST /_control/hold, GET /_control/calls, POST /_control/reset)

It counts calls per endpoint and symbol (a batch quote counts once, under its
comma list of symbols), checks the API key the way each API
does, and injects faults on demand: http500, http503, timeout (hangs), slow,
garbage (not JSON), rate_limit, rate_limit_info (Alpha Vantage "Information"),
empty (empty quote / unknown symbol), bad_key.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.fakes.market_formats import (
    AV_BAD_KEY,
    AV_INFORMATION,
    AV_INVALID_CALL,
    AV_NOTE,
    FMP_BAD_KEY,
    FMP_LIMIT,
    NEWS_BAD_KEY,
    NEWS_LIMIT,
    MarketBook,
)

FAULTS = (
    "http500",
    "http503",
    "timeout",
    "slow",
    "garbage",
    "rate_limit",
    "rate_limit_info",
    "empty",
    "bad_key",
)
APIS = ("fmp", "alphavantage", "newsapi")
DEFAULT_KEY = "test-key"
# How long a "timeout" fault hangs at most (clients give up long before).
HANG_SECONDS = 60.0


@dataclass
class Fault:
    """An injected fault: which API it hits (None: all) and for how many more requests."""

    kind: str
    api: str | None = None
    remaining: int | None = None
    delay_ms: int = 0


class FakeUpstream:
    """The fake server; start() binds 127.0.0.1 on an ephemeral port unless told otherwise."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        delay_ms: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        today: dt.date | None = None,
        extra_symbols: int = 0,
    ) -> None:
        self.api_key = api_key
        self.delay_ms = delay_ms
        self.host = host
        self.port = port
        self.book = MarketBook(today)
        # Made-up tickers beyond the named ones, for workloads over many symbols.
        for i in range(extra_symbols):
            self.book.names[extra_symbol(i)] = f"Synthetic Holdings {i}"
        self.faults: list[Fault] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._release = asyncio.Event()
        # Cleared by hold(): API replies wait until release() (for deterministic overlap).
        self._gate = asyncio.Event()
        self._gate.set()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL (scheme and host) to give an adapter."""
        return f"http://{self.host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> FakeUpstream:
        app = web.Application()
        app.router.add_get("/stable/quote", self._fmp_stable_quote)
        app.router.add_get("/stable/batch-quote", self._fmp_stable_batch_quote)
        app.router.add_get("/api/v3/quote/{symbol}", self._fmp_v3_quote)
        app.router.add_get("/stable/historical-price-eod/full", self._fmp_stable_history)
        app.router.add_get("/api/v3/historical-price-full/{symbol}", self._fmp_v3_history)
        app.router.add_get("/query", self._alphavantage)
        app.router.add_get("/v2/everything", self._newsapi)
        app.router.add_post("/_control/fault", self._control_fault)
        app.router.add_delete("/_control/fault", self._control_clear)
        app.router.add_post("/_control/delay", self._control_delay)
        app.router.add_post("/_control/hold", self._control_hold)
        app.router.add_get("/_control/calls", self._control_calls)
        app.router.add_post("/_control/reset", self._control_reset)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        # The port bound (the one picked for port 0), from aiohttp's public addresses.
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        self._release.set()  # let hanging "timeout" handlers return
        self._gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- control (Python) ------------------------------------------------------------------

    def set_fault(
        self, kind: str, api: str | None = None, times: int | None = None, delay_ms: int = 0
    ) -> None:
        """Inject `kind` for the next `times` requests to `api` (None: every API, until cleared)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULTS)}")
        if api is not None and api not in APIS:
            raise ValueError(f"unknown api {api!r}; expected one of {', '.join(APIS)}")
        self._release.clear()
        self.faults.append(Fault(kind, api, times, delay_ms))

    def clear_faults(self) -> None:
        self.faults.clear()
        self._release.set()

    def hold(self) -> None:
        """Make API replies wait (after being counted) until release()."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def set_delay_ms(self, delay_ms: int) -> None:
        """Delay every API reply by this much (the benchmarks use 100 ms)."""
        self.delay_ms = delay_ms

    def calls(self, endpoint: str | None = None, symbol: str | None = None) -> int:
        """Calls so far; `endpoint` is exact ("fmp.stable.quote") or a prefix ("fmp")."""
        return sum(
            n
            for (name, sym), n in self._counts.items()
            if (endpoint is None or name == endpoint or name.startswith(endpoint + "."))
            and (symbol is None or sym == symbol)
        )

    def call_counts(self) -> dict[str, int]:
        per: Counter[str] = Counter()
        for (name, _), n in self._counts.items():
            per[name] += n
        return dict(per)

    def reset(self) -> None:
        self._counts.clear()
        self.clear_faults()
        self.release()

    # -- request handling ------------------------------------------------------------------

    def _take_fault(self, api: str) -> Fault | None:
        for fault in self.faults:
            if fault.api in (None, api):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    async def _begin(self, api: str, endpoint: str, symbol: str) -> Fault | None:
        """Count the call, apply the delay, and return the fault to answer with (if any)."""
        self._counts[(endpoint, symbol)] += 1
        await self._gate.wait()
        fault = self._take_fault(api)
        delay = self.delay_ms + (fault.delay_ms if fault and fault.kind == "slow" else 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        if _kind(fault) == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), HANG_SECONDS)
        return fault if fault is not None and fault.kind != "slow" else None

    def _generic(self, fault: Fault | None) -> web.Response | None:
        if fault is None:
            return None
        if fault.kind in ("http500", "http503", "timeout"):
            status = 503 if fault.kind == "http503" else 500
            return web.Response(status=status, text="upstream failure")
        if fault.kind == "garbage":
            return web.Response(text="<html>oops</html>{", content_type="text/html")
        return None

    def _fmp_error(self, request: web.Request, fault: Fault | None) -> web.Response | None:
        if _kind(fault) == "bad_key" or request.query.get("apikey") != self.api_key:
            return web.json_response(FMP_BAD_KEY, status=401)
        if _kind(fault) in ("rate_limit", "rate_limit_info"):
            return web.json_response(FMP_LIMIT, status=429)
        return self._generic(fault)

    async def _fmp_quote(self, request: web.Request, symbol: str, stable: bool) -> web.Response:
        name = "fmp.stable.quote" if stable else "fmp.v3.quote"
        fault = await self._begin("fmp", name, symbol)
        error = self._fmp_error(request, fault)
        if error is not None:
            return error
        if _kind(fault) == "empty" or not self.book.knows(symbol):
            return web.json_response([])
        return web.json_response(self.book.fmp_quote(symbol, stable))

    async def _fmp_batch_quote(
        self, request: web.Request, joined: str, stable: bool
    ) -> web.Response:
        # One call (counted once, under the comma list); one quote object per
        # known symbol, in one array, exactly as the one-symbol path; unknown
        # symbols are left out.
        name = "fmp.stable.batch-quote" if stable else "fmp.v3.batch-quote"
        fault = await self._begin("fmp", name, joined)
        error = self._fmp_error(request, fault)
        if error is not None:
            return error
        if _kind(fault) == "empty":
            return web.json_response([])
        symbols = [s.strip() for s in joined.split(",") if s.strip()]
        known = [s for s in symbols if self.book.knows(s)]
        return web.json_response([item for s in known for item in self.book.fmp_quote(s, stable)])

    async def _fmp_stable_quote(self, request: web.Request) -> web.Response:
        return await self._fmp_quote(request, request.query.get("symbol", ""), True)

    async def _fmp_stable_batch_quote(self, request: web.Request) -> web.Response:
        return await self._fmp_batch_quote(request, request.query.get("symbols", ""), True)

    async def _fmp_v3_quote(self, request: web.Request) -> web.Response:
        # v3 takes a comma list on the same path: /api/v3/quote/AAPL,MSFT.
        symbol = request.match_info["symbol"]
        if "," in symbol:
            return await self._fmp_batch_quote(request, symbol, False)
        return await self._fmp_quote(request, symbol, False)

    def batch_symbols(self, endpoint: str = "fmp.stable.batch-quote") -> list[list[str]]:
        """The symbols of each batch call so far (one list per call; repeats repeated)."""
        return [
            sym.split(",")
            for (name, sym), n in self._counts.items()
            if name == endpoint
            for _ in range(n)
        ]

    async def _fmp_stable_history(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        fault = await self._begin("fmp", "fmp.stable.history", symbol)
        error = self._fmp_error(request, fault)
        if error is not None:
            return error
        if _kind(fault) == "empty" or not self.book.knows(symbol):
            return web.json_response([])
        start = dt.date.fromisoformat(request.query.get("from", "2000-01-01"))
        end = dt.date.fromisoformat(request.query.get("to", self.book.today().isoformat()))
        count = max(
            sum(
                1
                for i in range((end - start).days + 1)
                if (start + dt.timedelta(days=i)).weekday() < 5
            ),
            0,
        )
        bars = self.book.bars(symbol, min(count, 1300), min(end, self.book.today()))
        return web.json_response([self.book.fmp_bar(symbol, b) for b in reversed(bars)])

    async def _fmp_v3_history(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        fault = await self._begin("fmp", "fmp.v3.history", symbol)
        error = self._fmp_error(request, fault)
        if error is not None:
            return error
        if _kind(fault) == "empty" or not self.book.knows(symbol):
            return web.json_response({})
        count = int(request.query.get("timeseries", "1300"))
        bars = self.book.bars(symbol, count)
        rows = [self.book.fmp_bar(symbol, b) for b in reversed(bars)]
        return web.json_response({"symbol": symbol, "historical": rows})

    async def _alphavantage(self, request: web.Request) -> web.Response:
        function = request.query.get("function", "")
        symbol = request.query.get("symbol", "")
        fault = await self._begin("alphavantage", f"alphavantage.{function}", symbol)
        generic = self._generic(fault)
        if generic is not None:
            return generic
        # Alpha Vantage reports every problem with HTTP 200.
        if _kind(fault) == "bad_key" or request.query.get("apikey") != self.api_key:
            return web.json_response(AV_BAD_KEY)
        if _kind(fault) == "rate_limit":
            return web.json_response(AV_NOTE)
        if _kind(fault) == "rate_limit_info":
            return web.json_response(AV_INFORMATION)
        unknown = _kind(fault) == "empty" or not self.book.knows(symbol)
        if function == "GLOBAL_QUOTE":
            return web.json_response(
                {"Global Quote": {}} if unknown else self.book.av_quote(symbol)
            )
        if function == "TIME_SERIES_DAILY":
            if unknown:
                return web.json_response(AV_INVALID_CALL)
            full = request.query.get("outputsize") == "full"
            return web.json_response(self.book.av_daily(symbol, full))
        return web.json_response(AV_INVALID_CALL)

    async def _newsapi(self, request: web.Request) -> web.Response:
        query = request.query.get("q", "")
        fault = await self._begin("newsapi", "newsapi.everything", query)
        generic = self._generic(fault)
        if generic is not None:
            return generic
        key = request.headers.get("X-Api-Key") or request.query.get("apiKey")
        if _kind(fault) == "bad_key" or key != self.api_key:
            return web.json_response(NEWS_BAD_KEY, status=401)
        if _kind(fault) in ("rate_limit", "rate_limit_info"):
            return web.json_response(NEWS_LIMIT, status=429)
        if _kind(fault) == "empty":
            return web.json_response({"status": "ok", "totalResults": 0, "articles": []})
        day = dt.date.fromisoformat(request.query.get("from", self.book.today().isoformat())[:10])
        articles = self.book.articles(query, day)
        size = int(request.query.get("pageSize", "100"))
        return web.json_response(
            {"status": "ok", "totalResults": len(articles), "articles": articles[:size]}
        )

    # -- control (HTTP) --------------------------------------------------------------------

    async def _control_fault(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        try:
            self.set_fault(
                str(body["fault"]),
                body.get("api"),
                body.get("times"),
                int(body.get("delay_ms", 0)),
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"faults": len(self.faults)})

    async def _control_clear(self, _request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"faults": 0})

    async def _control_delay(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.set_delay_ms(int(body["ms"]))
        return web.json_response({"delay_ms": self.delay_ms})

    async def _control_hold(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        if body.get("hold"):
            self.hold()
        else:
            self.release()
        return web.json_response({"hold": not self._gate.is_set()})

    async def _control_calls(self, _request: web.Request) -> web.Response:
        return web.json_response({"total": self.calls(), "endpoints": self.call_counts()})

    async def _control_reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"total": 0})


def extra_symbol(i: int) -> str:
    """The i-th made-up ticker (`--extra-symbols`)."""
    return f"ZX{i:03d}"


def _kind(fault: Fault | None) -> str:
    return "" if fault is None else fault.kind


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeUpstream(
        api_key=args.api_key,
        delay_ms=args.delay_ms,
        host=args.host,
        port=args.port,
        today=dt.date.fromisoformat(args.today) if args.today else None,
        extra_symbols=args.extra_symbols,
    )
    await fake.start()
    if args.ready_file:
        ready = Path(args.ready_file)
        tmp = ready.with_name(ready.name + ".tmp")
        tmp.write_text(json.dumps({"url": fake.url, "port": fake.port, "pid": os.getpid()}))
        tmp.replace(ready)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", default="")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULT_KEY)
    parser.add_argument("--today", default="", help="pin the fake's date (YYYY-MM-DD)")
    parser.add_argument(
        "--extra-symbols", type=int, default=0, help="also quote this many made-up tickers"
    )
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
