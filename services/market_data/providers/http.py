"""GET JSON from a provider over aiohttp; failures become UpstreamErrors that carry no URL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp

from services.common.json_value import JSON
from services.market_data.upstream_errors import UpstreamBadResponseError, UpstreamUnavailableError

_KEY_PARAM = re.compile(r"(?i)(api_?key|token|key)=[^&\s\"']+")


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret and every `apikey=...` query value replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEY_PARAM.sub(lambda m: f"{m.group(1)}=***", text)


class HttpSessions:
    """One aiohttp session per process, created on first use inside the event loop."""

    def __init__(self, user_agent: str = "marketcache-market-data/0.1") -> None:
        self._session: aiohttp.ClientSession | None = None
        self._user_agent = user_agent

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
                headers={"User-Agent": self._user_agent, "Accept": "application/json"},
                # Per-request timeouts are set on each call from the deadline.
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True)
class HttpReply:
    """A provider's answer: HTTP status and its JSON body (None when not JSON)."""

    status: int
    body: JSON


class HttpUpstream:
    """A provider's base URL (scheme and host) and the secrets to keep out of errors."""

    def __init__(
        self, provider: str, base_url: str, secrets: Iterable[str], sessions: HttpSessions
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._secrets = tuple(s for s in secrets if s)
        self._sessions = sessions

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    async def get_json(
        self,
        path: str,
        params: Mapping[str, str],
        time_limit: float,
        headers: Mapping[str, str] | None = None,
    ) -> HttpReply:
        """GET base_url+path; 5xx, timeouts and connection errors raise UpstreamUnavailableError."""
        url = self.base_url + path
        try:
            async with self._sessions.session().get(
                url,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=max(time_limit, 0.001)),
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError:
            raise UpstreamUnavailableError(
                f"{self.provider} did not answer within {time_limit:.2f}s", outcome="timeout"
            ) from None
        except aiohttp.ClientError as exc:
            # `from None`: the chained exception's text may hold the URL and its key.
            raise UpstreamUnavailableError(
                f"{self.provider} unreachable: {self.redact(_describe(exc))}"
            ) from None
        if status >= 500:
            raise UpstreamUnavailableError(f"{self.provider} answered HTTP {status}")
        try:
            body: JSON = json.loads(raw)
        except ValueError:
            if status == 200:
                raise UpstreamBadResponseError(
                    f"{self.provider} answered HTTP 200 with a body that is not JSON"
                ) from None
            body = None
        return HttpReply(status, body)


def _describe(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]
