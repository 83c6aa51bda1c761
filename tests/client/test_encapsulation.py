"""No private attribute of the client's objects is reached from outside its own class:
what another module needs is a public method (transport.routes(), transport.learn())."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED = ["services/client", "tests/client", "tests/near_cache", "bench/near_cache.py"]


def private_reaches(source: str) -> list[str]:
    """Each `x._name` in `source` where x is not self or cls, as "line: x._name"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_sees_a_private_reach() -> None:
    source = "self._ok = 1\nclient._call('Get', None)\nclient.transport._routes.clear()\n"
    assert private_reaches(source) == ["2: client._call", "3: client.transport._routes"]


def test_no_client_module_or_client_test_reaches_a_private_attribute() -> None:
    found: list[str] = []
    for name in CHECKED:
        root = REPO / name
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            found += [f"{path.relative_to(REPO)}:{at}" for at in private_reaches(path.read_text())]
    assert found == []
