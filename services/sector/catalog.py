"""The eleven SPDR sector ETFs, the SPY benchmark, and symbol validation."""

from __future__ import annotations

import re

import grpc

from services.common.errors import ServiceError, invalid_argument

# Symbol -> sector name, alphabetical by symbol (the order ListSectors answers in).
SECTORS: dict[str, str] = {
    "XLB": "Materials",
    "XLC": "Communication Services",
    "XLE": "Energy",
    "XLF": "Financials",
    "XLI": "Industrials",
    "XLK": "Technology",
    "XLP": "Consumer Staples",
    "XLRE": "Real Estate",
    "XLU": "Utilities",
    "XLV": "Health Care",
    "XLY": "Consumer Discretionary",
}
BENCHMARK = "SPY"
BENCHMARK_NAME = "S&P 500"
# Every symbol the service fetches: the sectors, then the benchmark.
ALL_SYMBOLS: tuple[str, ...] = (*SECTORS, BENCHMARK)

_SYMBOL_FORM = re.compile(r"^[A-Za-z][A-Za-z.\-]{0,9}$")


def name_of(symbol: str) -> str:
    """The sector name of a sector symbol, or the benchmark's name."""
    return BENCHMARK_NAME if symbol == BENCHMARK else SECTORS[symbol]


def valid_symbols_text() -> str:
    return f"{', '.join(SECTORS)} (and {BENCHMARK}, the benchmark)"


def check_symbol(raw: str, field: str = "symbol") -> str:
    """Normalize a requested symbol; INVALID_ARGUMENT when malformed, NOT_FOUND when unknown."""
    symbol = raw.strip().upper()
    if not symbol:
        raise invalid_argument(f"{field} is required: one of {valid_symbols_text()}", field=field)
    if not _SYMBOL_FORM.match(symbol):
        raise invalid_argument(
            f"{field} {raw!r} is not a ticker symbol: expected 1-10 letters such as XLK; "
            f"valid symbols are {valid_symbols_text()}",
            field=field,
        )
    if symbol not in SECTORS and symbol != BENCHMARK:
        raise ServiceError(
            grpc.StatusCode.NOT_FOUND,
            f"{symbol} is not an SPDR sector ETF: valid symbols are {valid_symbols_text()}",
        )
    return symbol
