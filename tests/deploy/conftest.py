"""Fixtures for the deployment tests: rendered overlays and the tools that check them."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import OVERLAYS, Doc, render, require_tool


@pytest.fixture(scope="session")
def rendered_overlays() -> dict[str, list[Doc]]:
    """Every overlay rendered once per session (kubectl kustomize is not free)."""
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    """Each overlay in turn."""
    name: str = request.param
    return name


@pytest.fixture
def docs(rendered_overlays: dict[str, list[Doc]], overlay: str) -> list[Doc]:
    """The rendered documents of the overlay under test."""
    return rendered_overlays[overlay]


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (Debian package prometheus; `make deps` installs it)."""
    return require_tool("promtool", "apt-get install prometheus (make deps)")
