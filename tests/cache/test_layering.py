"""The cache server never loads the cache client: the protocol they share lives in
services.common.wire, so a server module importing the client is a layering mistake."""

from __future__ import annotations

import subprocess
import sys

# Import every module of services.cache in a fresh interpreter (this one has loaded
# the client for other tests) and list what of services came with them.
_PROBE = """
import importlib, pkgutil, sys
import services.cache as package
for module in pkgutil.walk_packages(package.__path__, "services.cache."):
    importlib.import_module(module.name)
print("\\n".join(sorted(name for name in sys.modules if name.startswith("services."))))
"""


def test_no_cache_server_module_imports_the_cache_client() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert "services.common.wire" in loaded  # the probe saw the server's imports
    assert not [name for name in loaded if name.startswith("services.client")]
    assert "services.common.cache_client" not in loaded
