"""google.api.http path templates: parsing, matching, and which of two matches is more specific.

Grammar (google/api/http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

Matching works on the raw (still percent-encoded) request path, split on "/",
so an encoded slash inside a single-segment variable stays one segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import unquote

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Unreserved and sub-delims that may appear literally in a path segment (RFC 3986).
_LITERAL = re.compile(r"^[A-Za-z0-9\-._~!$&'()+,;=@%]+$")


class TemplateError(ValueError):
    """A google.api.http path template does not follow the grammar."""


class PathError(ValueError):
    """A request path matched a template but a parameter could not be decoded."""


class Kind(IntEnum):
    """One segment of a template; lower values are more specific."""

    LITERAL = 0
    ANY = 1  # "*": exactly one segment
    DEEP = 2  # "**": zero or more segments, only last


_WILDCARD = {Kind.ANY: "*", Kind.DEEP: "**"}


@dataclass(frozen=True)
class Segment:
    """A template segment: a literal text, `*` or `**`."""

    kind: Kind
    text: str = ""


@dataclass(frozen=True)
class Variable:
    """A field path bound to segments [start, end) of the template (end None: through `**`)."""

    field_path: str
    start: int
    end: int | None


@dataclass(frozen=True)
class PathTemplate:
    """A parsed template, ready to match raw request paths."""

    template: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str = ""

    @property
    def specificity(self) -> tuple[tuple[int, ...], int]:
        """Sort key: literals beat `*`, `*` beats `**`, segment by segment, then longer first."""
        return tuple(int(s.kind) for s in self.segments), -len(self.segments)

    @property
    def deep(self) -> bool:
        """Whether the template ends in `**` (matches paths of any length above its own)."""
        return bool(self.segments) and self.segments[-1].kind is Kind.DEEP

    @property
    def field_paths(self) -> tuple[str, ...]:
        return tuple(v.field_path for v in self.variables)

    def openapi_path(self) -> str:
        """The template as an OpenAPI path: each variable becomes `{field.path}`."""
        parts: list[str] = []
        index = 0
        by_start = {v.start: v for v in self.variables}
        while index < len(self.segments):
            variable = by_start.get(index)
            if variable is not None:
                parts.append("{" + variable.field_path + "}")
                index = len(self.segments) if variable.end is None else variable.end
                continue
            segment = self.segments[index]
            parts.append(segment.text if segment.kind is Kind.LITERAL else _WILDCARD[segment.kind])
            index += 1
        path = "/" + "/".join(parts)
        return f"{path}:{self.verb}" if self.verb else path

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Bind variables from a raw (percent-encoded) path, or None when it does not match.

        Raises PathError when the path matches but a parameter is not valid UTF-8.
        """
        if not raw_path.startswith("/"):
            return None
        path = raw_path[1:]
        if self.verb:
            path, sep, verb = path.rpartition(":")
            if not sep or verb != self.verb:
                return None
        parts = path.split("/")
        if not self._shape_matches(parts):
            return None
        bindings: dict[str, str] = {}
        for variable in self.variables:
            end = len(parts) if variable.end is None else variable.end
            captured = parts[variable.start : end]
            if len(captured) == 1:
                # One segment: everything is decoded, including %2F (http.proto).
                bindings[variable.field_path] = _decode(captured[0], variable.field_path)
            else:
                # Several segments: decoded except %2F, which stays as sent.
                bindings[variable.field_path] = "/".join(
                    _decode_keep_slash(p, variable.field_path) for p in captured
                )
        return bindings

    def _shape_matches(self, parts: list[str]) -> bool:
        deep = self.deep
        fixed = len(self.segments) - 1 if deep else len(self.segments)
        if len(parts) < fixed or (not deep and len(parts) != fixed):
            return False
        for segment, part in zip(self.segments[:fixed], parts, strict=False):
            if part == "":
                return False  # an empty segment ("//", trailing "/") never matches
            if segment.kind is Kind.LITERAL:
                text = _unquote_or_none(part) if "%" in part else part
                if text != segment.text:
                    return False
        return all(part != "" for part in parts[fixed:])


def parse_template(template: str) -> PathTemplate:
    """Parse a google.api.http path template; raise TemplateError naming the problem."""
    if not template.startswith("/"):
        raise TemplateError(f"{template!r}: a path template starts with '/'")
    body, verb = _split_verb(template[1:], template)
    segments: list[Segment] = []
    variables: list[Variable] = []
    for token in _tokens(body, template):
        if token.startswith("{"):
            inner = token[1:-1]
            field_path, eq, sub = inner.partition("=")
            if not all(_IDENT.match(part) for part in field_path.split(".")):
                raise TemplateError(f"{template!r}: bad field path {field_path!r}")
            start = len(segments)
            for sub_token in sub.split("/") if eq else ["*"]:
                segments.append(_segment(sub_token, template))
            end = None if segments[-1].kind is Kind.DEEP else len(segments)
            variables.append(Variable(field_path, start, end))
        else:
            segments.append(_segment(token, template))
    for index, segment in enumerate(segments):
        if segment.kind is Kind.DEEP and index != len(segments) - 1:
            raise TemplateError(f"{template!r}: '**' must be the last segment")
    names = [v.field_path for v in variables]
    if len(set(names)) != len(names):
        raise TemplateError(f"{template!r}: a field is bound twice")
    return PathTemplate(template, tuple(segments), tuple(variables), verb)


def _split_verb(body: str, template: str) -> tuple[str, str]:
    # A ":" outside braces in the last segment starts the verb.
    depth = 0
    for index in range(len(body) - 1, -1, -1):
        char = body[index]
        if char == "}":
            depth += 1
        elif char == "{":
            depth -= 1
        elif char == "/" and depth == 0:
            break
        elif char == ":" and depth == 0:
            verb = body[index + 1 :]
            if not _LITERAL.match(verb):
                raise TemplateError(f"{template!r}: bad verb {verb!r}")
            return body[:index], verb
    return body, ""


def _tokens(body: str, template: str) -> list[str]:
    tokens: list[str] = []
    current = ""
    depth = 0
    for char in body:
        if char == "{":
            if depth:
                raise TemplateError(f"{template!r}: nested '{{'")
            depth = 1
        elif char == "}":
            if not depth:
                raise TemplateError(f"{template!r}: unbalanced '}}'")
            depth = 0
        if char == "/" and not depth:
            tokens.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise TemplateError(f"{template!r}: unbalanced '{{'")
    tokens.append(current)
    return tokens


def _segment(token: str, template: str) -> Segment:
    if token == "*":
        return Segment(Kind.ANY)
    if token == "**":
        return Segment(Kind.DEEP)
    if not token or not _LITERAL.match(token) or "{" in token:
        raise TemplateError(f"{template!r}: bad segment {token!r}")
    return Segment(Kind.LITERAL, token)


def _decode(part: str, field: str) -> str:
    try:
        return unquote(part, errors="strict")
    except UnicodeDecodeError:
        raise PathError(f"path parameter {field!r} is not valid percent-encoded UTF-8") from None


def _decode_keep_slash(part: str, field: str) -> str:
    pieces = re.split(r"(%2[Ff])", part)
    return "".join(p if p.lower() == "%2f" else _decode(p, field) for p in pieces)


def _unquote_or_none(part: str) -> str | None:
    try:
        return unquote(part, errors="strict")
    except UnicodeDecodeError:
        return None
