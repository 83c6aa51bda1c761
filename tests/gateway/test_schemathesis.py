"""Schemathesis drives the live /openapi.json of a gateway in front of the real services.

Deterministic (derandomized Hypothesis, no example database) and bounded (a
fixed number of examples per operation). Checks: no 5xx, documented status
codes and content types, responses that conform to their schemas, admin routes
that reject missing credentials, and 405 for undocumented methods.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from tests.gateway.stack import TOKEN, Stack, gateway_stack

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Path values that reach the happy path, so 200 bodies get checked against the schema too.
REALISTIC_PATH = {"key": "fuzz:one", "prefix": "fuzz", "symbol": "XLK"}
RESPONSE_CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
]
POSITIVE_CHECKS = [*RESPONSE_CHECKS, st_checks.ignored_auth, st_checks.unsupported_method]
# Streamed routes: JSON Lines and the never-ending event stream, tested on their own
# (test_transfer_routes.py, test_events.py); generated JSON bodies mean nothing to them.
STREAMING = {"GET /api/v1/events", "GET /api/v1/cache/export", "POST /api/v1/cache/import"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with gateway_stack(tmp_path_factory.mktemp("gw-fuzz"), market_data=True, sector=True) as up:
        yield up


@pytest.fixture(scope="module")
def schema(stack: Stack) -> Any:
    return schemathesis.openapi.from_url(f"{stack.url}/openapi.json")


def _run(
    stack: Stack,
    schema: Any,
    *,
    mode: GenerationMode,
    examples: int,
    checks: list[Callable[..., Any]],
    path_values: dict[str, str] | None = None,
) -> Counter[tuple[str, int]]:
    """Run every operation; return counts per (operation, status); fail listing every failure."""
    seen: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in STREAMING:
            continue
        names = [p.name for p in operation.path_parameters]
        if path_values is not None and not names:
            continue
        if mode is GenerationMode.NEGATIVE and not (names or operation.query or operation.body):
            continue  # nothing to make invalid
        fixed = {n: path_values[n] for n in names} if path_values is not None else None
        strategy = operation.as_strategy(mode, path_parameters=fixed)
        try:
            _fuzz(stack, strategy, operation.label, examples, checks, seen)
        except Unsatisfiable:
            # A lone string path parameter has no invalid form schemathesis can send.
            if mode is not GenerationMode.NEGATIVE:
                failures.append(f"{operation.label}: no valid case could be generated")
        except Exception as exc:  # collect, so one failing operation does not hide the rest
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures) + "\n\n" + stack.gateway.log()[-4000:]
    return seen


def _fuzz(  # noqa: PLR0917
    stack: Stack,
    strategy: Any,
    label: str,
    examples: int,
    checks: list[Callable[..., Any]],
    seen: Counter[tuple[str, int]],
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call_and_validate(base_url=stack.url, headers=AUTH, checks=checks)
        seen[(label, response.status_code)] += 1

    check()


def test_fuzz_every_operation(stack: Stack, schema: Any) -> None:
    positive = _run(
        stack, schema, mode=GenerationMode.POSITIVE, examples=30, checks=POSITIVE_CHECKS
    )
    realistic = _run(
        stack,
        schema,
        mode=GenerationMode.POSITIVE,
        examples=25,
        checks=RESPONSE_CHECKS,
        path_values=REALISTIC_PATH,
    )
    negative = _run(
        stack, schema, mode=GenerationMode.NEGATIVE, examples=20, checks=RESPONSE_CHECKS
    )
    total = positive + realistic + negative
    statuses = Counter[int]()
    for (_, status), count in total.items():
        statuses[status] += count
    print(f"schemathesis: {sum(total.values())} cases, by status {dict(sorted(statuses.items()))}")
    assert sum(total.values()) >= 500, total
    assert all(status < 500 for _, status in total)
    # The happy path was exercised too, not only rejections.
    ok = {label for (label, status) in total if status == 200}
    assert {
        "GET /api/v1/cache/keys/{key}",
        "PUT /api/v1/cache/keys/{key}",
        "POST /api/v1/cache/mget",
        "GET /api/v1/sectors/{symbol}",
        "GET /api/v1/market/quotes/{symbol}",
    } <= ok
