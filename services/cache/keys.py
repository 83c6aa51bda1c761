"""Cache keys: `<prefix>:<rest>`, where the prefix (the unit of ownership) is the first
`depth` colon-separated segments."""

from __future__ import annotations

from services.common.errors import ServiceError, invalid_argument

MAX_KEY_BYTES = 256


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
