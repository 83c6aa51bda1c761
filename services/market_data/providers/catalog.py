"""The symbols the synthetic provider knows, with names and a plausible price level."""

from __future__ import annotations

from typing import NamedTuple


class Listing(NamedTuple):
    """A known symbol: display name and the price its random walk centres on."""

    name: str
    base_price: float


SECTOR_ETFS: dict[str, Listing] = {
    "XLB": Listing("Materials Select Sector SPDR Fund", 90.0),
    "XLC": Listing("Communication Services Select Sector SPDR Fund", 95.0),
    "XLE": Listing("Energy Select Sector SPDR Fund", 90.0),
    "XLF": Listing("Financial Select Sector SPDR Fund", 50.0),
    "XLI": Listing("Industrial Select Sector SPDR Fund", 135.0),
    "XLK": Listing("Technology Select Sector SPDR Fund", 230.0),
    "XLP": Listing("Consumer Staples Select Sector SPDR Fund", 80.0),
    "XLRE": Listing("Real Estate Select Sector SPDR Fund", 42.0),
    "XLU": Listing("Utilities Select Sector SPDR Fund", 80.0),
    "XLV": Listing("Health Care Select Sector SPDR Fund", 145.0),
    "XLY": Listing("Consumer Discretionary Select Sector SPDR Fund", 215.0),
}

INDEX_ETFS: dict[str, Listing] = {
    "SPY": Listing("SPDR S&P 500 ETF Trust", 590.0),
    "QQQ": Listing("Invesco QQQ Trust", 510.0),
    "DIA": Listing("SPDR Dow Jones Industrial Average ETF Trust", 430.0),
    "IWM": Listing("iShares Russell 2000 ETF", 220.0),
}

STOCKS: dict[str, Listing] = {
    "AAPL": Listing("Apple Inc.", 230.0),
    "MSFT": Listing("Microsoft Corporation", 420.0),
    "GOOGL": Listing("Alphabet Inc. Class A", 175.0),
    "GOOG": Listing("Alphabet Inc. Class C", 176.0),
    "AMZN": Listing("Amazon.com, Inc.", 200.0),
    "META": Listing("Meta Platforms, Inc.", 580.0),
    "NVDA": Listing("NVIDIA Corporation", 135.0),
    "TSLA": Listing("Tesla, Inc.", 330.0),
    "BRK.B": Listing("Berkshire Hathaway Inc. Class B", 460.0),
    "JPM": Listing("JPMorgan Chase & Co.", 240.0),
    "V": Listing("Visa Inc.", 310.0),
    "MA": Listing("Mastercard Incorporated", 520.0),
    "UNH": Listing("UnitedHealth Group Incorporated", 520.0),
    "JNJ": Listing("Johnson & Johnson", 155.0),
    "LLY": Listing("Eli Lilly and Company", 800.0),
    "PFE": Listing("Pfizer Inc.", 26.0),
    "MRK": Listing("Merck & Co., Inc.", 100.0),
    "ABBV": Listing("AbbVie Inc.", 180.0),
    "XOM": Listing("Exxon Mobil Corporation", 110.0),
    "CVX": Listing("Chevron Corporation", 150.0),
    "PG": Listing("The Procter & Gamble Company", 165.0),
    "KO": Listing("The Coca-Cola Company", 63.0),
    "PEP": Listing("PepsiCo, Inc.", 150.0),
    "WMT": Listing("Walmart Inc.", 90.0),
    "COST": Listing("Costco Wholesale Corporation", 920.0),
    "HD": Listing("The Home Depot, Inc.", 400.0),
    "MCD": Listing("McDonald's Corporation", 290.0),
    "NKE": Listing("NIKE, Inc.", 75.0),
    "DIS": Listing("The Walt Disney Company", 110.0),
    "NFLX": Listing("Netflix, Inc.", 900.0),
    "ADBE": Listing("Adobe Inc.", 450.0),
    "CRM": Listing("Salesforce, Inc.", 320.0),
    "ORCL": Listing("Oracle Corporation", 170.0),
    "IBM": Listing("International Business Machines Corporation", 230.0),
    "INTC": Listing("Intel Corporation", 20.0),
    "AMD": Listing("Advanced Micro Devices, Inc.", 120.0),
    "CSCO": Listing("Cisco Systems, Inc.", 58.0),
    "BAC": Listing("Bank of America Corporation", 45.0),
    "WFC": Listing("Wells Fargo & Company", 72.0),
    "GS": Listing("The Goldman Sachs Group, Inc.", 590.0),
    "T": Listing("AT&T Inc.", 23.0),
    "VZ": Listing("Verizon Communications Inc.", 40.0),
    "BA": Listing("The Boeing Company", 170.0),
    "CAT": Listing("Caterpillar Inc.", 370.0),
    "GE": Listing("GE Aerospace", 190.0),
}

CATALOG: dict[str, Listing] = {**SECTOR_ETFS, **INDEX_ETFS, **STOCKS}
