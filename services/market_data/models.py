"""Market data as plain values: what providers return and what the cache stores (as JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from services.common.json_value import JSON


@dataclass(frozen=True)
class Quote:
    """The latest quote of one symbol; `timestamp` is unix seconds."""

    symbol: str
    name: str
    price: float
    change: float
    change_percent: float
    open: float
    day_high: float
    day_low: float
    previous_close: float
    volume: int
    timestamp: float

    def to_json(self) -> JSON:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: JSON) -> Quote:
        return cls(**_fields(cls, obj))


@dataclass(frozen=True)
class Bar:
    """One daily bar; `date` is YYYY-MM-DD."""

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: int

    def to_json(self) -> JSON:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: JSON) -> Bar:
        return cls(**_fields(cls, obj))


@dataclass(frozen=True)
class Article:
    """One news article; `published_at` is unix seconds."""

    title: str
    source: str
    url: str
    published_at: float
    summary: str

    def to_json(self) -> JSON:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: JSON) -> Article:
        return cls(**_fields(cls, obj))


def _fields(cls: type, obj: JSON) -> dict[str, Any]:
    # Cached values come back through JSON; ignore keys we no longer know so a
    # newer writer's entries do not break an older reader.
    if not isinstance(obj, dict):
        raise ValueError(f"expected an object for {cls.__name__}, got {type(obj).__name__}")
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {key: value for key, value in obj.items() if key in names}
