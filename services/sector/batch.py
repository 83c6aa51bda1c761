"""Validating SetBatchSectorData: every item is checked before anything is written."""

from __future__ import annotations

import math

import grpc
from google.protobuf import timestamp_pb2

from marketcache.v1 import sector_pb2
from services.common.errors import ServiceError, invalid_argument
from services.sector.catalog import check_symbol, name_of, valid_symbols_text
from services.sector.config import DAY

TRENDS = ("strong-uptrend", "uptrend", "neutral", "downtrend", "strong-downtrend")
MAX_TTL = 30 * DAY
# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799


def validated_batch(
    request: sector_pb2.SetBatchSectorDataRequest, now: float
) -> list[sector_pb2.SectorData]:
    """The request's sectors, normalized; INVALID_ARGUMENT naming the first bad field."""
    if not request.sectors:
        raise invalid_argument(
            "sectors is empty: send at least one SectorData with a symbol and a price",
            field="sectors",
        )
    if not 0 <= request.ttl_seconds <= MAX_TTL:
        raise invalid_argument(
            f"ttl_seconds must be between 0 (SECTOR_TTL_DATA) and {MAX_TTL}, "
            f"got {request.ttl_seconds}",
            field="ttl_seconds",
        )
    records: list[sector_pb2.SectorData] = []
    seen: set[str] = set()
    for index, item in enumerate(request.sectors):
        field = f"sectors[{index}]"
        symbol = _symbol(item.symbol, f"{field}.symbol")
        if symbol in seen:
            raise invalid_argument(
                f"{field}.symbol: {symbol} appears more than once", field=f"{field}.symbol"
            )
        seen.add(symbol)
        numbers = {
            "price": item.price,
            "change": item.change,
            "change_percent": item.change_percent,
        }
        for group in ("performance", "relative_strength"):
            fields = getattr(item, group).ListFields()
            numbers.update({f"{group}.{f.name}": v for f, v in fields})
        for name, value in numbers.items():
            if not math.isfinite(value):
                raise invalid_argument(
                    f"{field}.{name} must be a finite number", field=f"{field}.{name}"
                )
        if item.price <= 0:
            raise invalid_argument(
                f"{field}.price must be positive, got {item.price}", field=f"{field}.price"
            )
        if item.volume < 0:
            raise invalid_argument(f"{field}.volume must not be negative", field=f"{field}.volume")
        if item.trend and item.trend not in TRENDS:
            raise invalid_argument(
                f"{field}.trend must be one of {', '.join(TRENDS)}, got {item.trend!r}",
                field=f"{field}.trend",
            )
        if item.HasField("as_of") and not _valid_timestamp(item.as_of):
            raise invalid_argument(
                f"{field}.as_of must be a time between 0001-01-01 and 9999-12-31 "
                f"with nanos in 0..999999999, got seconds={item.as_of.seconds} "
                f"nanos={item.as_of.nanos}",
                field=f"{field}.as_of",
            )
        record = sector_pb2.SectorData()
        record.CopyFrom(item)
        record.symbol, record.name, record.rank = symbol, name_of(symbol), 0
        record.trend = item.trend or "neutral"
        if not record.HasField("as_of"):
            record.as_of.FromNanoseconds(int(now * 1e9))
        records.append(record)
    return records


def _valid_timestamp(stamp: timestamp_pb2.Timestamp) -> bool:
    # An out-of-range Timestamp cannot be written as JSON, so it could never be cached.
    return MIN_SECONDS <= stamp.seconds <= MAX_SECONDS and 0 <= stamp.nanos <= 999_999_999


def _symbol(raw: str, field: str) -> str:
    try:
        return check_symbol(raw, field)
    except ServiceError as exc:
        if exc.code is grpc.StatusCode.NOT_FOUND:
            # In a write, an unknown symbol is a bad argument, not a missing resource.
            raise invalid_argument(
                f"{field}: {raw.strip().upper()} is not an SPDR sector ETF: "
                f"valid symbols are {valid_symbols_text()}",
                field=field,
            ) from None
        raise
