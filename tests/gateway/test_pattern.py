"""Path templates: parsing, matching, percent-decoding, specificity."""

from __future__ import annotations

import pytest

from services.gateway.pattern import Kind, PathError, TemplateError, parse_template


def test_literal_and_variable_segments() -> None:
    template = parse_template("/api/v1/cache/keys/{key}")
    assert [s.kind for s in template.segments] == [Kind.LITERAL] * 4 + [Kind.ANY]
    assert template.field_paths == ("key",)
    assert template.match("/api/v1/cache/keys/stock:AAPL") == {"key": "stock:AAPL"}
    assert template.match("/api/v1/cache/keys") is None
    assert template.match("/api/v1/cache/keys/a/b") is None
    assert template.match("/api/v1/cache/other/a") is None


def test_single_segment_variable_decodes_everything_including_slash() -> None:
    template = parse_template("/v1/keys/{key}")
    assert template.match("/v1/keys/news%3AAAPL%2F2025") == {"key": "news:AAPL/2025"}
    assert template.match("/v1/keys/caf%C3%A9") == {"key": "café"}
    assert template.match("/v1/keys/a%20b") == {"key": "a b"}


def test_multi_segment_variable_keeps_encoded_slash() -> None:
    template = parse_template("/v1/{name=files/**}")
    assert template.field_paths == ("name",)
    assert template.match("/v1/files/a/b%2Fc/d%20e") == {"name": "files/a/b%2Fc/d e"}
    assert template.match("/v1/files") == {"name": "files"}  # ** matches zero segments
    assert template.match("/v1/other/a") is None


def test_deep_wildcard_variable_and_nested_field_path() -> None:
    template = parse_template("/v1/{book.name=shelves/*/books/*}")
    assert template.field_paths == ("book.name",)
    assert template.match("/v1/shelves/1/books/2") == {"book.name": "shelves/1/books/2"}
    assert template.match("/v1/shelves/1/books") is None
    deep = parse_template("/v1/{path=**}")
    assert deep.match("/v1/a/b/c") == {"path": "a/b/c"}


def test_verb() -> None:
    template = parse_template("/v1/{name}:undelete")
    assert template.verb == "undelete"
    assert template.match("/v1/thing:undelete") == {"name": "thing"}
    assert template.match("/v1/thing") is None
    assert template.match("/v1/thing:delete") is None


def test_invalid_utf8_in_a_parameter_is_a_path_error() -> None:
    template = parse_template("/v1/keys/{key}")
    with pytest.raises(PathError, match="key"):
        template.match("/v1/keys/%FF%FE")


def test_empty_segments_never_match() -> None:
    template = parse_template("/v1/keys/{key}")
    assert template.match("/v1/keys/") is None
    assert template.match("/v1//keys/a") is None


def test_literals_compare_after_decoding() -> None:
    assert parse_template("/api/v1/cache/health").match("/api/v1/%63ache/health") == {}


def test_literal_is_more_specific_than_variable() -> None:
    literal = parse_template("/api/v1/sectors/snapshot")
    variable = parse_template("/api/v1/sectors/{symbol}")
    deep = parse_template("/api/v1/sectors/{rest=**}")
    assert literal.specificity < variable.specificity < deep.specificity


def test_openapi_path() -> None:
    assert parse_template("/v1/{a.b}/x/{c=**}").openapi_path() == "/v1/{a.b}/x/{c}"
    assert parse_template("/v1/{name}:undelete").openapi_path() == "/v1/{name}:undelete"


@pytest.mark.parametrize(
    "bad",
    [
        "v1/keys",
        "/v1/{key",
        "/v1/key}",
        "/v1/{a{b}}",
        "/v1/**/x",
        "/v1/{1bad}",
        "/v1/{a}/{a}",
        "/v1//x",
        "/v1/a b",
    ],
)
def test_bad_templates_are_rejected(bad: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(bad)
