"""Settings from the environment fail fast with the variable's name."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, Env, load_or_exit, parse_address


def test_typed_values_and_defaults() -> None:
    env = Env({"A": " 7 ", "B": "2.5", "C": "off", "D": "127.0.0.1:0", "E": ""})
    assert env.integer("A", 1) == 7
    assert env.number("B", 1.0) == 2.5
    assert env.flag("C", True) is False
    assert env.address("D", "x:1") == "127.0.0.1:0"
    assert env.string("E", "fallback") == "fallback"  # blank means unset
    assert env.integer("MISSING", 42) == 42


@pytest.mark.parametrize(
    ("environ", "call", "fragment"),
    [
        ({"N": "ten"}, lambda e: e.integer("N", 1), "N: expected an integer, got 'ten'"),
        ({"N": "0"}, lambda e: e.integer("N", 1, minimum=1), "N: must be at least 1, got 0"),
        ({"F": "maybe"}, lambda e: e.flag("F", True), "F: expected true or false"),
        ({"L": "localhost"}, lambda e: e.address("L", "x:1"), "L: expected host:port"),
        ({"L": "h:99999"}, lambda e: e.address("L", "x:1"), "L: port must be 0-65535"),
        ({"P": "ftp://x"}, lambda e: e.url("P", "http://x"), "P: expected an http(s) URL"),
        ({"C": "blue"}, lambda e: e.choice("C", "a", ("a", "b")), "C: expected one of a, b"),
    ],
)
def test_errors_name_the_variable(environ: dict[str, str], call: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        call(Env(environ))  # type: ignore[operator]
    assert fragment in str(caught.value)


def test_load_or_exit_prints_one_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    def loader() -> int:
        raise ConfigError("CACHE_LISTEN: expected host:port, got 'nope'")

    with pytest.raises(SystemExit) as caught:
        load_or_exit(loader)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "configuration error: CACHE_LISTEN: expected host:port, got 'nope'"
    ]


def test_parse_address_handles_ipv6() -> None:
    assert parse_address("[::1]:50051") == ("::1", 50051)
