"""Cache keys: `<prefix>:<rest>`, where the prefix (the unit of ownership) is the first
`depth` colon-separated segments."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.errors import ServiceError, invalid_argument

MAX_KEY_BYTES = 256
# Up to this many characters a string cannot exceed MAX_KEY_BYTES (4 bytes per
# character at most), so its size needs no encoding.
_SHORT = MAX_KEY_BYTES // 4


class KeyRules:
    """Validates keys and prefixes and extracts a key's prefix."""

    def __init__(self, depth: int = 1) -> None:
        if depth < 1:
            raise ValueError("prefix depth must be at least 1")
        self.depth = depth
        if depth == 1:
            self.form = "'<prefix>:<rest>', e.g. 'stock:AAPL'"
        else:
            parts = [f"<part{i + 1}>" for i in range(depth)]
            example = ["news", "AAPL", *[f"p{i}" for i in range(3, depth + 1)], "2025-01-15"]
            self.form = f"'{':'.join(parts)}:<rest>', e.g. '{':'.join(example)}'"

    def prefix_of(self, key: str, field: str = "key") -> str:
        """The prefix of a valid key; ServiceError INVALID_ARGUMENT naming the problem."""
        prefix = self._quick_prefix(key)
        if prefix is not None:
            return prefix
        # Something is wrong (or unusual): the slow path names it.
        _check_text(key, "key", field, self.form)
        parts = key.split(":", self.depth)
        if len(parts) <= self.depth:
            raise _bad(
                f"key {key!r} has no prefix: expected {self.form}"
                if self.depth == 1
                else f"key {key!r} has fewer than {self.depth} prefix segments and a rest: "
                f"expected {self.form}",
                field,
            )
        if any(part == "" for part in parts[: self.depth]):
            raise _bad(f"key {key!r} has an empty prefix segment: expected {self.form}", field)
        if parts[-1] == "":
            raise _bad(f"key {key!r} has nothing after the prefix: expected {self.form}", field)
        return ":".join(parts[: self.depth])

    def prefixes(self, keys: Sequence[str], field: str = "keys") -> list[str]:
        """The prefix of each key; the error names the item (`keys[3]`)."""
        quick = self._quick_prefix
        found: list[str] = []
        for index, key in enumerate(keys):
            prefix = quick(key)
            if prefix is None:
                # Only a key that fails the quick test pays for its field name.
                prefix = self.prefix_of(key, f"{field}[{index}]")
            found.append(prefix)
        return found

    def _quick_prefix(self, key: str) -> str | None:
        """The prefix of a plainly valid key at C speed; None when in any doubt."""
        # Python counts every white-space character except the ASCII space as
        # unprintable, so this is _check_text's test without a Python loop.
        if not key.isprintable() or " " in key or not _fits(key):
            return None
        if self.depth == 1:
            colon = key.find(":")
            return key[:colon] if 0 < colon < len(key) - 1 else None
        parts = key.split(":", self.depth)
        if len(parts) <= self.depth or parts[-1] == "" or "" in parts[: self.depth]:
            return None
        return ":".join(parts[: self.depth])

    def check_prefix(self, prefix: str, field: str = "prefix") -> str:
        """A valid prefix as given (e.g. 'stock', without the trailing colon)."""
        _check_text(prefix, "prefix", field, self.form)
        parts = prefix.split(":")
        if len(parts) != self.depth or any(part == "" for part in parts):
            raise _bad(
                f"prefix {prefix!r} is not a prefix of {self.depth} segment(s) "
                f"(the part of a key before ':<rest>' in {self.form})",
                field,
            )
        return prefix

    def prefix_or_key(self, text: str, field: str = "prefix") -> str:
        """The prefix named by `text`, which may be a prefix or a whole key."""
        _check_text(text, "prefix", field, self.form)
        if text.count(":") >= self.depth:
            return self.prefix_of(text, field)
        return self.check_prefix(text, field)


def _fits(text: str) -> bool:
    """Non-empty and at most MAX_KEY_BYTES of UTF-8."""
    if len(text) <= _SHORT:
        return text != ""
    if text.isascii():
        return len(text) <= MAX_KEY_BYTES
    return len(text.encode("utf-8", errors="surrogatepass")) <= MAX_KEY_BYTES


def _check_text(text: str, what: str, field: str, form: str) -> None:
    if text == "":
        raise _bad(f"{what} is empty: expected {form}", field)
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise _bad(
            f"{what} is {size} bytes of UTF-8; the limit is {MAX_KEY_BYTES} bytes "
            f"(starts {text[:32]!r})",
            field,
        )
    if text.isprintable() and " " not in text:
        return
    # Slow, only to name the offending character.
    for char in text:
        if char.isspace() or not char.isprintable():
            raise _bad(
                f"{what} {text!r} contains white space or a control character "
                f"({char!r}): expected {form} with no spaces",
                field,
            )


def _bad(message: str, field: str) -> ServiceError:
    # Inside a batch, say which item: "items[3].key: key 'AAPL' has no prefix ...".
    if field not in ("key", "prefix"):
        message = f"{field}: {message}"
    return invalid_argument(message, field)
