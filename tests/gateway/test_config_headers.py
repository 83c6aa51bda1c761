"""Gateway settings from the environment, Grpc-Timeout parsing and metadata forwarding."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.common.config import ConfigError, Env
from services.gateway.config import DEFAULT_MAX_BODY_BYTES, GatewaySettings
from services.gateway.errors import HttpError
from services.gateway.headers import forwarded_metadata, parse_timeout
from tests.support.processes import REPO


def test_defaults() -> None:
    settings = GatewaySettings.from_env(Env({}))
    assert settings.listen == "127.0.0.1:8080"
    assert settings.backends == {
        "marketcache.v1.CacheService": "127.0.0.1:50051",
        "marketcache.v1.MarketDataService": "127.0.0.1:50052",
        "marketcache.v1.SectorService": "127.0.0.1:50053",
    }
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES > 1024 * 1024
    assert settings.default_timeout == 10.0
    assert settings.admin_token is None


def test_from_env() -> None:
    settings = GatewaySettings.from_env(
        Env(
            {
                "GATEWAY_LISTEN": "0.0.0.0:9000",
                "CACHE_ADDR": "cache:1",
                "SECTOR_ADDR": "sector:3",
                "GATEWAY_MAX_BODY_BYTES": "4096",
                "GATEWAY_DEFAULT_TIMEOUT": "2.5",
                "ADMIN_TOKEN": "s3cret",
            }
        )
    )
    assert settings.listen == "0.0.0.0:9000"
    assert settings.backends["marketcache.v1.CacheService"] == "cache:1"
    assert settings.backends["marketcache.v1.SectorService"] == "sector:3"
    assert (settings.max_body_bytes, settings.default_timeout) == (4096, 2.5)
    assert settings.admin_token == "s3cret"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_LISTEN", "nowhere"),
        ("CACHE_ADDR", "cache"),
        ("GATEWAY_MAX_BODY_BYTES", "lots"),
        ("GATEWAY_MAX_BODY_BYTES", "10"),
        ("GATEWAY_DEFAULT_TIMEOUT", "-1"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        GatewaySettings.from_env(Env({name: value}))


def test_the_process_exits_2_with_one_line_naming_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "GATEWAY_DEFAULT_TIMEOUT": "soon"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: GATEWAY_DEFAULT_TIMEOUT: expected a number, got 'soon'"
    ]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2H", 7200.0),
        ("3M", 180.0),
        ("5S", 5.0),
        ("100m", 0.1),
        ("250u", 0.00025),
        ("1000n", 1e-6),
    ],
)
def test_grpc_timeout_units(header: str, seconds: float) -> None:
    assert parse_timeout(header, 10.0, 1e6) == pytest.approx(seconds)


def test_grpc_timeout_is_capped_at_the_maximum() -> None:
    assert parse_timeout("99999999H", 10.0, 300.0) == 300.0


def test_grpc_timeout_absent_is_the_default_and_garbage_is_400() -> None:
    assert parse_timeout(None, 7.0, 300.0) == 7.0
    for bad in ("", "5", "S", "5s", "1.5S", "-1S", "123456789S", "5 S", "0S", "0n"):
        with pytest.raises(HttpError) as exc:
            parse_timeout(bad, 7.0, 300.0)
        assert exc.value.http == 400


def test_forwarded_metadata() -> None:
    headers = [
        ("Authorization", "Bearer t"),
        ("Grpc-Metadata-X-Request-Id", "r1"),
        ("grpc-metadata-tenant", "acme"),
        ("Cookie", "secret"),
        ("X-Forwarded-For", "1.2.3.4"),
    ]
    assert forwarded_metadata(headers) == [
        ("authorization", "Bearer t"),
        ("x-request-id", "r1"),
        ("tenant", "acme"),
    ]
    for bad in [
        ("Grpc-Metadata-Te", "trailers"),
        ("Grpc-Metadata-Grpc-Timeout", "1S"),
        ("Grpc-Metadata-A B", "x"),
        ("Grpc-Metadata-X", "line\nbreak"),
        ("Authorization", "Bearer \u00e9"),
    ]:
        with pytest.raises(HttpError):
            forwarded_metadata([bad])
