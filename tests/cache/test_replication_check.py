"""The start-up check of synchronous replication, and the URLs a failover pair needs."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.cache.config import CacheSettings
from services.common.config import ConfigError, Env
from tests.cache.harness import cache_env
from tests.support.processes import running, start_service


def _metric(port: int, name: str) -> list[float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return [
        s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name
    ]


@pytest.mark.postgres
def test_an_asynchronous_database_is_named_once_and_exported_as_0(
    tmp_path: Path, pg_url: str
) -> None:
    # The machine's server has no standby: it replicates nothing synchronously.
    with running("cache", cache_env(tmp_path, CACHE_DB_URL=pg_url), tmp_path) as proc:
        assert _metric(proc.metrics_port, "cache_db_synchronous_replication") == [0.0]
        warnings = [
            line for line in proc.log().splitlines() if "does not replicate synchronously" in line
        ]
        assert len(warnings) == 1, proc.log()
        assert "CACHE_REQUIRE_SYNC_REPLICATION" in warnings[0]
        assert "synchronous_standby_names=''" in warnings[0]


def test_sqlite_exports_the_help_but_no_sample(tmp_path: Path) -> None:
    with running("cache", cache_env(tmp_path), tmp_path) as proc:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=10
        ) as reply:
            text = reply.read().decode()
        assert "# HELP cache_db_synchronous_replication 1 when the PostgreSQL primary" in text
        assert _metric(proc.metrics_port, "cache_db_synchronous_replication") == []
        assert "does not replicate synchronously" not in proc.log()


@pytest.mark.postgres
def test_require_sync_replication_refuses_to_start_naming_the_variable(
    tmp_path: Path, pg_url: str
) -> None:
    env = cache_env(tmp_path, CACHE_DB_URL=pg_url, CACHE_REQUIRE_SYNC_REPLICATION="true")
    proc = start_service("cache", env, tmp_path, wait=False)
    try:
        code = proc.popen.wait(timeout=60)
    finally:
        proc.stop()
    assert code == 1, proc.log()
    errors = [line for line in proc.log().splitlines() if "ERROR" in line]
    assert len(errors) == 1, proc.log()
    assert "CACHE_REQUIRE_SYNC_REPLICATION=true" in errors[0]
    assert "does not replicate synchronously" in errors[0]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"CACHE_DB_URL": "postgresql+psycopg://u@/db?host=a:5432,b:5432"},
            "CACHE_DB_URL: write several hosts as ?host=h1:5432&host=h2:5432",
        ),
        (
            {"CACHE_DB_URL": "postgresql+psycopg://u@/db?host=a:5432&host=b:5432"},
            "CACHE_DB_URL: 2 hosts but no target_session_attrs=read-write",
        ),
        (
            {"CACHE_DB_URL": "sqlite:///x.db", "CACHE_DB_URLS": "postgresql+psycopg://u@h/a"},
            "CACHE_DB_URL and CACHE_DB_URLS are both set",
        ),
        (
            {"CACHE_DB_URLS": "postgresql+psycopg://u@h/a sqlite:///x.db"},
            "CACHE_DB_URLS: shards must be PostgreSQL databases",
        ),
        (
            {"CACHE_DB_URLS": "postgresql+psycopg://u@h/a,postgresql+psycopg://u@h/a"},
            "CACHE_DB_URLS: the same URL is listed twice",
        ),
        (
            {"CACHE_DB_URLS": "postgresql+psycopg://u:x@h/a, postgresql+psycopg://u:y@h/a"},
            "CACHE_DB_URLS: two URLs differ only in their password",
        ),
    ],
)
def test_database_urls_that_cannot_work_are_refused(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CacheSettings.from_env(Env(env))
    assert expected in str(caught.value)


def test_a_failover_pair_in_either_form_is_accepted() -> None:
    for url in (
        "postgresql+psycopg://u@/db?host=a:5432&host=b:5433&target_session_attrs=read-write",
        "postgresql+psycopg://u@/db?host=a,b&port=5432,5433&target_session_attrs=read-write",
    ):
        assert CacheSettings.from_env(Env({"CACHE_DB_URL": url})).db_url == url


def test_several_shards_are_accepted_in_order() -> None:
    urls = ("postgresql+psycopg://u@h/a", "postgresql+psycopg://u@h/b")
    settings = CacheSettings.from_env(Env({"CACHE_DB_URLS": " , ".join(urls)}))
    assert settings.db_urls == urls
    assert settings.db_url == urls[0]
