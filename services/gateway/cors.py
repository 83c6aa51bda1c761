"""CORS for browser clients: which origins GATEWAY_CORS_ORIGINS allows, preflights, headers."""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass

from services.common.config import ConfigError

# scheme://host[:port], nothing after it: an Origin header never has a path.
_ORIGIN = re.compile(r"^https?://[^\s/?#:]+(:[0-9]{1,5})?$", re.IGNORECASE)
# What a browser may send besides the CORS-safelisted headers: the admin token,
# a JSON body, a deadline; Grpc-Metadata-* headers are echoed when asked for.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Grpc-Timeout")
METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS")
# Response headers a script may read beyond the safelisted ones.
EXPOSED_HEADERS = ("Allow", "Content-Length", "Retry-After")
MAX_AGE_SECONDS = 600


@dataclass(frozen=True)
class CorsPolicy:
    """The allowed origins; empty means CORS is off (no header is ever added)."""

    origins: frozenset[str] = frozenset()
    any_origin: bool = False

    @classmethod
    def parse(cls, value: str | None, name: str = "GATEWAY_CORS_ORIGINS") -> CorsPolicy:
        """`*`, or a comma-separated list of origins such as `https://app.example:8443`."""
        if value is None or not value.strip():
            return cls()
        items = [item.strip() for item in value.split(",") if item.strip()]
        if "*" in items:
            if len(items) > 1:
                raise ConfigError(f"{name}: '*' allows every origin and cannot be combined")
            return cls(any_origin=True)
        for item in items:
            if not _ORIGIN.match(item):
                raise ConfigError(
                    f"{name}: expected '*' or origins like https://app.example:8443 "
                    f"(scheme, host, optional port, no path), got {item!r}"
                )
        return cls(origins=frozenset(item.lower() for item in items))

    @property
    def enabled(self) -> bool:
        return self.any_origin or bool(self.origins)

    def allows(self, origin: str | None) -> bool:
        """Whether a request from `origin` gets CORS headers."""
        if origin is None or not self.enabled:
            return False
        return self.any_origin or origin.lower() in self.origins

    def decorate(self, origin: str | None, headers: MutableMapping[str, str]) -> None:
        """Add CORS headers to a response when `origin` is allowed (nothing when CORS is off)."""
        if not self.enabled:
            return
        # With a list of origins the answer depends on Origin, allowed or not, so a
        # shared cache must not hand one origin's answer to another.
        if not self.any_origin:
            _vary_origin(headers)
        if origin is None or not self.allows(origin):
            return
        headers["Access-Control-Allow-Origin"] = "*" if self.any_origin else origin
        headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
        _vary_origin(headers)

    def preflight_headers(self, origin: str, requested: str | None) -> dict[str, str]:
        """The headers of a 204 answer to an allowed preflight."""
        headers = {
            "Access-Control-Allow-Origin": "*" if self.any_origin else origin,
            "Access-Control-Allow-Methods": ", ".join(METHODS),
            "Access-Control-Allow-Headers": ", ".join(_allowed_headers(requested)),
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        }
        _vary_origin(headers)
        return headers


def _allowed_headers(requested: str | None) -> list[str]:
    # Forwarded gRPC metadata headers have open-ended names, so the ones a
    # preflight asks for are echoed; the gateway itself validates their values.
    extra = [
        name.strip()
        for name in (requested or "").split(",")
        if name.strip().lower().startswith("grpc-metadata-")
    ]
    return [*ALLOWED_HEADERS, *_unique(extra)]


def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return list(seen.values())


def _vary_origin(headers: MutableMapping[str, str]) -> None:
    # The answer depends on Origin, so a shared cache must not serve it to another origin.
    current = headers.get("Vary", "")
    if "origin" not in current.lower():
        headers["Vary"] = f"{current}, Origin" if current else "Origin"
