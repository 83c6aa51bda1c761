"""Coverage-guided fuzz targets (atheris/libFuzzer) for the key validator and the path matcher.

Run one as its own process: `python -m tests.reliability.atheris_targets keys -runs=20000`.
A target fails (libFuzzer reports a crash and exits non-zero) when the code
under test raises anything but its documented error, or breaks an invariant.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable
from typing import Any

import grpc

# Imported by name: atheris is optional and ships no type information.
atheris: Any = importlib.import_module("atheris")

with atheris.instrument_imports():
    from services.cache.store.keys import MAX_KEY_BYTES, KeyRules
    from services.common.errors import ServiceError
    from services.gateway.pattern import PathError, PathTemplate, TemplateError, parse_template
    from services.gateway.routes import (
        MethodNotAllowedError,
        NoRouteError,
        Router,
        api_services,
        build_routes,
    )

RULES = [KeyRules(depth) for depth in (1, 2, 3)]
TEMPLATES = [
    parse_template(t)
    for t in (
        "/api/v1/cache/keys/{key}",
        "/api/v1/cache/prefixes/{prefix}",
        "/v1/{name=messages/*}",
        "/v1/{name=files/**}",
        "/v1/{a}/x/{b.c}:run",
        "/v1/*/literal/**",
    )
]
ROUTER = Router(build_routes(api_services()))
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "get", "")


def keys(data: bytes) -> None:
    """KeyRules: a valid key's prefix is what it claims to be; anything else INVALID_ARGUMENT."""
    fdp = atheris.FuzzedDataProvider(data)
    rules = RULES[fdp.ConsumeIntInRange(0, len(RULES) - 1)]
    text = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 320))
    for check in (rules.prefix_of, rules.check_prefix, rules.prefix_or_key):
        try:
            prefix = check(text)
        except ServiceError as exc:
            if exc.code is not grpc.StatusCode.INVALID_ARGUMENT:
                raise AssertionError(f"{check.__name__}: {exc.code} for {text!r}") from None
            continue
        size = len(text.encode("utf-8", errors="surrogatepass"))
        assert 0 < size <= MAX_KEY_BYTES, (text, size)
        assert not any(c.isspace() or not c.isprintable() for c in text), text
        parts = prefix.split(":")
        assert len(parts) == rules.depth and all(parts), (text, prefix)
        if check is rules.prefix_of:
            assert text.startswith(prefix + ":") and len(text) > len(prefix) + 1, (text, prefix)
        elif check is rules.check_prefix:
            assert prefix == text


def paths(data: bytes) -> None:
    """Templates and the route table: a match or None, PathError for bad percent-encoding."""
    fdp = atheris.FuzzedDataProvider(data)
    method = METHODS[fdp.ConsumeIntInRange(0, len(METHODS) - 1)]
    template_text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    raw_path = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300)).decode("latin-1")
    templates: list[PathTemplate] = list(TEMPLATES)
    with contextlib.suppress(TemplateError):
        templates.append(parse_template("/" + template_text))
    for template in templates:
        try:
            bound = template.match(raw_path)
        except PathError:
            continue
        if bound is not None:
            assert set(bound) == set(template.field_paths), (template.template, raw_path)
            assert all(isinstance(v, str) for v in bound.values())
    try:
        found = ROUTER.resolve(method, raw_path)
    except (NoRouteError, MethodNotAllowedError, PathError):
        return
    assert found.route.http_method == method, (method, raw_path)


TARGETS: dict[str, Callable[[bytes], None]] = {"keys": keys, "paths": paths}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
