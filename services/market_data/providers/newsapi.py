"""NewsAPI /v2/everything: headlines mentioning a symbol on one day."""

from __future__ import annotations

import datetime as dt

from services.common.json_value import JSON
from services.market_data.models import Article
from services.market_data.providers.http import HttpUpstream
from services.market_data.upstream_errors import (
    UpstreamAuthError,
    UpstreamBadResponseError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)

NAME = "newsapi"
_KEY_CODES = ("apiKeyInvalid", "apiKeyMissing", "apiKeyDisabled")
_LIMIT_CODES = ("rateLimited", "apiKeyExhausted")
_PARAM_CODES = ("parameterInvalid", "parametersMissing")
# NewsAPI lists articles later taken down as "[Removed]" placeholders.
_REMOVED = "[Removed]"


class NewsApiProvider:
    """News from NewsAPI; the key travels in the X-Api-Key header, never in the URL."""

    name = NAME

    def __init__(self, http: HttpUpstream, api_key: str) -> None:
        self._http = http
        self._key = api_key

    async def news(self, symbol: str, day: dt.date, limit: int, time_limit: float) -> list[Article]:
        params = {
            "q": symbol,
            "from": day.isoformat(),
            "to": day.isoformat(),
            "sortBy": "publishedAt",
            "language": "en",
            "pageSize": str(min(max(limit, 1), 100)),
        }
        reply = await self._http.get_json(
            "/v2/everything", params, time_limit, headers={"X-Api-Key": self._key}
        )
        body = reply.body
        if not isinstance(body, dict):
            if reply.status == 429:
                raise UpstreamRateLimitedError("NewsAPI rate limit reached (HTTP 429)")
            raise UpstreamBadResponseError(f"newsapi answered HTTP {reply.status} without JSON")
        if body.get("status") != "ok":
            self._raise_error(body, reply.status)
        articles = body.get("articles")
        if not isinstance(articles, list):
            raise UpstreamBadResponseError("newsapi response lacks an 'articles' array")
        parsed = [a for a in (_article(item) for item in articles) if a is not None]
        parsed.sort(key=lambda a: a.published_at, reverse=True)
        return parsed[:limit]

    def _raise_error(self, body: dict[str, JSON], status: int) -> None:
        code = str(body.get("code") or "")
        text = self._http.redact(str(body.get("message") or code or f"HTTP {status}"))[:300]
        if code in _KEY_CODES or status == 401:
            raise UpstreamAuthError(
                "NewsAPI rejected the server's API key; an operator must set a valid NEWSAPI_KEY"
            )
        if code in _LIMIT_CODES or status == 429:
            raise UpstreamRateLimitedError(f"NewsAPI rate limit reached: {text}")
        if code in _PARAM_CODES:
            raise UpstreamRejectedError(f"NewsAPI refused the request: {text}")
        if code == "unexpectedError":
            raise UpstreamUnavailableError(f"NewsAPI failed: {text}")
        raise UpstreamBadResponseError(f"NewsAPI error {code or status}: {text}")


def _article(item: JSON) -> Article | None:
    if not isinstance(item, dict):
        return None
    title = item.get("title")
    url = item.get("url")
    if not isinstance(title, str) or not isinstance(url, str) or title == _REMOVED:
        return None
    source = item.get("source")
    source_name = source.get("name") if isinstance(source, dict) else None
    return Article(
        title=title,
        source=str(source_name or ""),
        url=url,
        published_at=_published(item.get("publishedAt")),
        summary=str(item.get("description") or ""),
    )


def _published(value: JSON) -> float:
    if not isinstance(value, str):
        return 0.0
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
