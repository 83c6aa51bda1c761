"""The NewsAPI adapter: articles, placeholders dropped, error codes mapped, key in a header."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from harness.fakes.upstream import FakeUpstream
from services.market_data.providers.http import HttpSessions, HttpUpstream
from services.market_data.providers.newsapi import NewsApiProvider
from services.market_data.upstream_errors import UpstreamError
from tests.market_data.conftest import TODAY

KEY = "news-SECRET-5555"


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=KEY, today=TODAY) as upstream:
        yield upstream


@pytest.fixture
async def news(fake: FakeUpstream) -> AsyncIterator[NewsApiProvider]:
    sessions = HttpSessions()
    yield NewsApiProvider(HttpUpstream("newsapi", fake.url, [KEY], sessions), KEY)
    await sessions.close()


async def test_articles_are_parsed_newest_first_without_removed_placeholders(
    fake: FakeUpstream, news: NewsApiProvider
) -> None:
    articles = await news.news("AAPL", TODAY, 100, 2.0)
    assert len(articles) == 5
    assert all(a.title != "[Removed]" for a in articles)
    assert articles[0].title == f"Apple Inc. headline 1 on {TODAY.isoformat()}"
    assert articles[0].source == "Wire 1"
    assert articles[0].url.startswith("https://news.test/aapl/")
    assert articles[0].summary == "What moved AAPL (1)."
    stamps = [a.published_at for a in articles]
    assert stamps == sorted(stamps, reverse=True) and stamps[-1] > 0
    assert fake.calls("newsapi.everything", "AAPL") == 1
    assert len(await news.news("AAPL", TODAY, 2, 2.0)) == 2


async def test_a_day_without_news_is_an_empty_list(
    fake: FakeUpstream, news: NewsApiProvider
) -> None:
    fake.set_fault("empty", "newsapi")
    assert await news.news("AAPL", TODAY, 10, 2.0) == []


@pytest.mark.parametrize(
    ("fault", "code", "outcome"),
    [
        ("bad_key", grpc.StatusCode.FAILED_PRECONDITION, "bad_key"),
        ("rate_limit", grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limited"),
        ("http503", grpc.StatusCode.UNAVAILABLE, "unavailable"),
        ("garbage", grpc.StatusCode.UNAVAILABLE, "bad_response"),
        ("timeout", grpc.StatusCode.UNAVAILABLE, "timeout"),
    ],
)
async def test_faults_map_to_status_codes(
    fake: FakeUpstream, news: NewsApiProvider, fault: str, code: grpc.StatusCode, outcome: str
) -> None:
    fake.set_fault(fault, "newsapi")
    with pytest.raises(UpstreamError) as caught:
        await news.news("AAPL", TODAY, 10, 0.3)
    assert (caught.value.code, caught.value.outcome) == (code, outcome)
    assert KEY not in caught.value.message


async def test_parameter_errors_are_the_callers(news: NewsApiProvider) -> None:
    body = {
        "status": "error",
        "code": "parameterInvalid",
        "message": "You are trying to request results too far in the past.",
    }
    with pytest.raises(UpstreamError) as caught:
        news._raise_error(body, 426)
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "too far in the past" in caught.value.message
