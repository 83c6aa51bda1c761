"""Every metric the rules and the dashboard query is one a service exports."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import REPO
from tests.deploy.metric_names import declared_name, owner, referenced_metrics


def test_references_are_found() -> None:
    names = referenced_metrics()
    assert {"cache_hits_total", "grpc_server_handled_total", "market_breaker_state"} <= names
    # Label names are not metric names.
    assert not {"grpc_service", "grpc_method", "grpc_code"} & names


@pytest.mark.parametrize("series", sorted(referenced_metrics()))
def test_the_metric_is_exported_by_its_service(series: str) -> None:
    package = REPO / "services" / owner(series)
    if not package.exists():
        pytest.skip(f"{package.relative_to(REPO)} is not present yet")
    name = declared_name(series)
    # prometheus_client accepts a counter's name with or without _total.
    spellings = {f'"{name}"', f'"{name.removesuffix("_total")}"'}
    sources = "\n".join(path.read_text() for path in package.rglob("*.py"))
    assert any(s in sources for s in spellings), (
        f"{series} is queried by deploy/ but services/{package.name} declares no {name}"
    )
