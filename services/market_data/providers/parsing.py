"""Reading numbers out of provider JSON without crashing on a missing or odd field."""

from __future__ import annotations

import datetime as dt

from services.common.json_value import JSON
from services.market_data.upstream_errors import UpstreamBadResponseError

# The US close (16:00 New York) in UTC, near enough when a provider gives only a date.
CLOSE_UTC = dt.time(20, 0, tzinfo=dt.UTC)


def number(item: dict[str, JSON], key: str, provider: str, *, required: bool = False) -> float:
    """A float from a JSON number or numeric string ("2.3322%" included); 0.0 when absent."""
    value = item.get(key)
    if value is None or value == "":
        if required:
            raise UpstreamBadResponseError(f"{provider} response lacks {key!r}")
        return 0.0
    if isinstance(value, bool):
        raise UpstreamBadResponseError(f"{provider} response has a non-numeric {key!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().rstrip("%"))
        except ValueError:
            pass
    raise UpstreamBadResponseError(f"{provider} response has a non-numeric {key!r}: {value!r:.40}")


def integer(item: dict[str, JSON], key: str, provider: str) -> int:
    return int(number(item, key, provider))


def close_timestamp(day: str, provider: str) -> float:
    """Unix time of the US close on an ISO date (providers give only the date)."""
    try:
        date = dt.date.fromisoformat(day)
    except (TypeError, ValueError):
        raise UpstreamBadResponseError(
            f"{provider} response has a malformed date {day!r:.40}"
        ) from None
    return dt.datetime.combine(date, CLOSE_UTC).timestamp()


def check_date(day: JSON, provider: str) -> str:
    if not isinstance(day, str):
        raise UpstreamBadResponseError(f"{provider} response has a malformed date {day!r:.40}")
    try:
        return dt.date.fromisoformat(day[:10]).isoformat()
    except ValueError:
        raise UpstreamBadResponseError(
            f"{provider} response has a malformed date {day!r:.40}"
        ) from None
