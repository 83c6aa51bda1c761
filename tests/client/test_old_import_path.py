"""services.common.cache_client, the client's old home, still imports for one release:
the same objects as services.client, with a DeprecationWarning naming the new path."""

from __future__ import annotations

import importlib
import sys

import pytest

from services import client


def test_the_old_path_gives_the_same_objects_and_a_deprecation_warning() -> None:
    sys.modules.pop("services.common.cache_client", None)
    with pytest.warns(DeprecationWarning, match="import from services.client"):
        old = importlib.import_module("services.common.cache_client")
    for name in client.__all__:
        assert getattr(old, name) is getattr(client, name), name
