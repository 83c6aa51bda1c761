"""Symbol checks and SetBatchSectorData validation: specific statuses naming the field."""

from __future__ import annotations

import math

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from marketcache.v1 import sector_pb2
from services.common.errors import ServiceError
from services.sector.batch import validated_batch
from services.sector.catalog import ALL_SYMBOLS, SECTORS, check_symbol

NOW = 1_736_900_000.0


def test_catalog_has_the_eleven_spdr_sectors_and_spy() -> None:
    assert len(SECTORS) == 11
    assert SECTORS["XLK"] == "Technology"
    assert SECTORS["XLRE"] == "Real Estate"
    assert ALL_SYMBOLS[-1] == "SPY"


def test_symbols_are_normalized() -> None:
    assert check_symbol(" xlk ") == "XLK"
    assert check_symbol("spy") == "SPY"


def test_an_unknown_symbol_is_not_found_and_lists_the_valid_ones() -> None:
    with pytest.raises(ServiceError) as caught:
        check_symbol("AAPL")
    assert caught.value.code is grpc.StatusCode.NOT_FOUND
    assert "XLB, XLC, XLE" in caught.value.message and "SPY" in caught.value.message


@pytest.mark.parametrize("raw", ["", "X L K", "XLK!", "123", "ABCDEFGHIJKL"])
def test_a_malformed_symbol_is_invalid_argument(raw: str) -> None:
    with pytest.raises(ServiceError) as caught:
        check_symbol(raw)
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "XLK" in caught.value.message


def item(symbol: str = "XLK", price: float = 200.0, **fields: object) -> sector_pb2.SectorData:
    return sector_pb2.SectorData(symbol=symbol, price=price, **fields)  # type: ignore[arg-type]


def test_a_valid_batch_is_normalized() -> None:
    request = sector_pb2.SetBatchSectorDataRequest(
        sectors=[item("xlk", name="wrong", rank=4), item("XLE", 80.0, trend="uptrend")]
    )
    records = validated_batch(request, NOW)
    assert [r.symbol for r in records] == ["XLK", "XLE"]
    assert records[0].name == "Technology"  # the catalog's, not the caller's
    assert records[0].rank == 0
    assert records[0].trend == "neutral"
    assert records[0].as_of.seconds == int(NOW)
    assert records[1].trend == "uptrend"


def field_of(exc: ServiceError) -> str:
    (detail,) = exc.details
    assert isinstance(detail, error_details_pb2.BadRequest)
    return str(detail.field_violations[0].field)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (sector_pb2.SetBatchSectorDataRequest(), "sectors"),
        (sector_pb2.SetBatchSectorDataRequest(sectors=[item("AAPL")]), "sectors[0].symbol"),
        (sector_pb2.SetBatchSectorDataRequest(sectors=[item("X L")]), "sectors[0].symbol"),
        (
            sector_pb2.SetBatchSectorDataRequest(sectors=[item(), item("XLK")]),
            "sectors[1].symbol",
        ),
        (sector_pb2.SetBatchSectorDataRequest(sectors=[item(price=0.0)]), "sectors[0].price"),
        (
            sector_pb2.SetBatchSectorDataRequest(sectors=[item(price=math.inf)]),
            "sectors[0].price",
        ),
        (
            sector_pb2.SetBatchSectorDataRequest(
                sectors=[item(performance=sector_pb2.Performance(ytd=math.nan))]
            ),
            "sectors[0].performance.ytd",
        ),
        (
            sector_pb2.SetBatchSectorDataRequest(sectors=[item(trend="sideways")]),
            "sectors[0].trend",
        ),
        (
            sector_pb2.SetBatchSectorDataRequest(sectors=[item()], ttl_seconds=-5),
            "ttl_seconds",
        ),
        (
            sector_pb2.SetBatchSectorDataRequest(sectors=[item()], ttl_seconds=10**9),
            "ttl_seconds",
        ),
    ],
)
def test_a_bad_batch_is_invalid_argument_naming_the_field(
    request_: sector_pb2.SetBatchSectorDataRequest, field: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        validated_batch(request_, NOW)
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(caught.value) == field
