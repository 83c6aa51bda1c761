"""Reading settings from the environment, failing fast with the variable's name."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import NoReturn, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Env:
    """A typed view over an environment mapping (os.environ by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self._env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def string(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def optional(self, name: str) -> str | None:
        return self.raw(name)

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
        return _check_range(name, number, minimum, maximum)

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
        return _check_range(name, number, minimum, maximum)

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true or false, got {value!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(name, default).lower()
        if value not in choices:
            raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    def address(self, name: str, default: str) -> str:
        """A host:port listen or dial address; port 0 asks for an ephemeral port."""
        value = self.string(name, default)
        parse_address(value, name)
        return value

    def url(self, name: str, default: str) -> str:
        value = self.string(name, default).rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ConfigError(f"{name}: expected an http(s) URL like https://host, got {value!r}")
        return value


def _check_range(name: str, number: T, minimum: T | None, maximum: T | None) -> T:
    if minimum is not None and number < minimum:  # type: ignore[operator]
        raise ConfigError(f"{name}: must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:  # type: ignore[operator]
        raise ConfigError(f"{name}: must be at most {maximum}, got {number}")
    return number


def parse_address(value: str, name: str = "address") -> tuple[str, int]:
    """Split 'host:port' (or '[v6]:port'); raise ConfigError naming the variable."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{name}: expected host:port, got {value!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(
            f"{name}: expected host:port with a numeric port, got {value!r}"
        ) from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}: port must be 0-65535, got {port}")
    return host.strip("[]"), port


def load_or_exit(loader: Callable[[], T]) -> T:
    """Run a settings loader; on ConfigError print one line and exit 2."""
    try:
        return loader()
    except ConfigError as exc:
        _die(f"configuration error: {exc}")


def _die(message: str) -> NoReturn:
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(2)
