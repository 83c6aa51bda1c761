"""REST fuzzing of the gateway in front of the real services: no 5xx, no hang, still well.

Extends tests/gateway/test_schemathesis.py (per-operation positive and negative
cases) with what it does not do: stateful sequences that follow OpenAPI links
(set a key, then read, delete and look up its owner; list sectors, then fetch
one), hand-written malformed requests (bad JSON, huge and compressed bodies,
latin-1, UTF-16 and invalid UTF-8, CR/LF and NUL in headers, huge headers,
odd paths) and hypothesis-generated raw bodies and header values.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import checks as st_checks

from tests.gateway.stack import TOKEN, Stack, gateway_stack, request
from tests.reliability.raw_http import HangError, RawReply, build, send
from tests.reliability.records import nothing_lost, record
from tests.reliability.rest_cases import BODY_ROUTES, body_cases, header_cases
from tests.reliability.rest_links import LINKS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 256 * 1024
STATEFUL_EXAMPLES = int(os.environ.get("REST_STATEFUL_EXAMPLES", "40"))
RAW_EXAMPLES = int(os.environ.get("REST_RAW_EXAMPLES", "150"))
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("rest-fuzz")
    env = {"GATEWAY_MAX_BODY_BYTES": str(MAX_BODY)}
    with gateway_stack(work, market_data=True, sector=True, gateway_env=env) as up:
        yield up


# -- stateful: OpenAPI links between operations --------------------------------------------


def _linked_schema(stack: Stack) -> Any:
    raw = request(stack.url, "GET", "/openapi.json").body
    for (path, method), links in LINKS.items():
        raw["paths"][path][method]["responses"]["200"]["links"] = links
    return schemathesis.openapi.from_dict(raw)


def test_stateful_sequences_follow_links_without_a_server_error(stack: Stack) -> None:
    schema = _linked_schema(stack)
    statuses: Counter[int] = Counter()
    transitions: Counter[str] = Counter()

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": stack.url, "headers": AUTH, "timeout": 30}

        def after_call(self, response: Any, case: Any) -> None:
            statuses[response.status_code] += 1
            transitions[f"{case.method} {case.path}"] += 1

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    failure: Exception | None = None
    try:
        Workflow.run(
            settings=settings(
                max_examples=STATEFUL_EXAMPLES,
                stateful_step_count=8,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
        )
    except Exception as exc:  # recorded first, then re-raised below
        failure = exc
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    record(
        "REST fuzzing, stateful (gateway)",
        tried=(
            "schemathesis state machine over /openapi.json with OpenAPI links added (set a key, "
            "then read, delete, find its owner, clear its prefix; list sectors or take the "
            "snapshot's best, then fetch it; a quote, then its history and news); checks: no "
            "5xx, documented status codes and content types, response schemas"
        ),
        cases=f"{sum(statuses.values())} calls in {STATEFUL_EXAMPLES} sequences",
        lost=nothing_lost(server_errors + (failure is not None), "5xx answers or check failures"),
        figures={
            "answers by status": dict(sorted(statuses.items())),
            "calls by operation": dict(transitions.most_common()),
            "failure": str(failure)[:2000] if failure else None,
        },
        passed=failure is None and not server_errors,
    )
    if failure is not None:
        raise failure
    assert not server_errors, statuses
    assert sum(statuses.values()) >= STATEFUL_EXAMPLES
    # The links were followed (the roots are POSTs and list GETs; these only come from links).
    key_ops = sum(n for op, n in transitions.items() if op.endswith("/api/v1/cache/keys/{key}"))
    assert key_ops > 0, transitions
    assert transitions["GET /api/v1/sectors/{symbol}"] > 0, transitions


# -- malformed requests, written by hand ---------------------------------------------------


def _answer(stack: Stack, name: str, raw: bytes, problems: list[str]) -> RawReply | None:
    try:
        reply = send(stack.gateway.http_address, raw)
    except (HangError, AssertionError, OSError) as exc:
        problems.append(f"{name}: {type(exc).__name__}: {exc}")
        return None
    if reply.status >= 500:
        problems.append(f"{name}: {reply.status} {reply.body[:300]!r}")
    return reply


def _still_well(stack: Stack) -> None:
    assert stack.gateway.popen.poll() is None, stack.gateway.log()[-3000:]
    put = request(
        stack.url, "PUT", "/api/v1/cache/keys/fuzz:well", {"value": [1, "two"]}, token=TOKEN
    )
    assert put.status == 200, put.body
    got = request(stack.url, "GET", "/api/v1/cache/keys/fuzz:well")
    assert got.status == 200 and got.body["value"] == [1, "two"], got.body
    assert request(stack.url, "GET", "/api/v1/sectors/XLK").status == 200


def test_malformed_requests_get_4xx_within_the_deadline(stack: Stack) -> None:
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    slowest = 0.0
    cases = [*body_cases(TOKEN, MAX_BODY), *header_cases(TOKEN)]
    for name, raw in cases:
        reply = _answer(stack, name, raw, problems)
        if reply is not None:
            statuses[reply.status] += 1
            slowest = max(slowest, reply.seconds)
    try:
        _still_well(stack)
    except AssertionError as exc:
        problems.append(f"not well afterwards: {exc}")
    unhandled = [line for line in stack.gateway.log().splitlines() if "unhandled error" in line]
    record(
        "REST fuzzing, malformed requests (gateway)",
        tried=(
            "raw HTTP to every body route and to read/write routes: malformed and hostile JSON "
            "(truncated, NaN, 1e400, 100k-deep nesting, lone surrogates), bodies over "
            "GATEWAY_MAX_BODY_BYTES (plain, chunked, lying Content-Length, a gzip bomb), "
            "latin-1/UTF-16/invalid UTF-8, gzip/deflate/bogus Content-Encoding, CR/LF/NUL and "
            "obs-fold in headers, 200 kB and 2000 headers, odd paths and request lines"
        ),
        cases=f"{len(cases)} requests; slowest answer {slowest:.2f}s (deadline 10s)",
        lost=nothing_lost(len(problems) + len(unhandled), "5xx, hangs or unanswered requests"),
        figures={
            "answers by status": dict(sorted(statuses.items())),
            "problems": problems[:30],
            "gateway 'unhandled error' log lines": unhandled[:10],
        },
        passed=not problems and not unhandled,
    )
    assert not problems, "\n".join(problems)
    assert not unhandled, "\n".join(unhandled)
    # Over-limit bodies are refused as such, not as bad JSON.
    assert statuses[413] >= 3 * len(BODY_ROUTES), statuses


# -- hypothesis: random bodies and header values ------------------------------------------


HEADER_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=60)


def test_random_bodies_and_header_values_get_4xx_or_2xx(stack: Stack) -> None:
    problems: list[str] = []
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=RAW_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(
        route=st.sampled_from(BODY_ROUTES),
        body=st.one_of(
            st.binary(max_size=300),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4)
                ),
                max_leaves=20,
            ).map(lambda obj: json.dumps(obj).encode()),
        ),
        header=HEADER_TEXT,
        content_type=st.sampled_from(
            ["application/json", "application/json; charset=utf-16", "text/plain", "", "*/*"]
        ),
        token=st.sampled_from([TOKEN, "wrong", ""]),
    )
    def check(
        route: tuple[str, str, object], body: bytes, header: str, content_type: str, token: str
    ) -> None:
        method, path, _ = route
        headers = [
            f"Content-Type: {content_type}".encode(),
            f"Authorization: Bearer {token}".encode(),
            b"X-Fuzz: " + header.encode("utf-8", errors="surrogatepass"),
            b"Grpc-Metadata-fuzz: " + header.encode("utf-8", errors="surrogatepass"),
        ]
        reply = _answer(
            stack,
            f"{method} {path} {body[:60]!r} {header!r}",
            build(method, path, body, headers),
            problems,
        )
        if reply is not None:
            statuses[reply.status] += 1

    check()
    try:
        _still_well(stack)
    except AssertionError as exc:
        problems.append(f"not well afterwards: {exc}")
    record(
        "REST fuzzing, random bodies and headers (gateway)",
        tried=(
            "hypothesis: random bytes or random JSON as the body of every body route, random "
            "Latin/control-character header values (also as Grpc-Metadata), odd content "
            "types, no/wrong/right token"
        ),
        cases=f"{sum(statuses.values())} requests",
        lost=nothing_lost(len(problems), "5xx, hangs or unanswered requests"),
        figures={"answers by status": dict(sorted(statuses.items())), "problems": problems[:30]},
        passed=not problems,
    )
    assert not problems, "\n".join(problems[:40])
    assert statuses and all(status < 500 for status in statuses)
