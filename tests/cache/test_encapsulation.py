"""No private attribute of the cache's objects is reached from outside the module that
defines it, tests included: a test that looks inside uses a public inspection method
(`CacheStore.state()`, `remembered()`, `hold()`, `CacheServer.store_of()`)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED = ["services/cache", "tests/cache", "tests/ownership"]
# Public API despite the underscore (kept clear of field and column names): SQLAlchemy's
# Row._mapping, and a named tuple's _replace and _asdict (SQLAlchemy's URL is one).
PUBLIC_ANYWAY = frozenset({"_mapping", "_replace", "_asdict"})


def _defined_in(tree: ast.AST) -> set[str]:
    """The names a module defines: functions, classes, variables and attributes it sets."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def reaches_elsewhere(source: str) -> list[str]:
    """Each `x._name` (x not self or cls) whose `_name` this module does not define,
    as "line: x._name"."""
    tree = ast.parse(source)
    own = _defined_in(tree) | PUBLIC_ANYWAY
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in own
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return sorted(found, key=lambda at: int(at.split(":")[0]))


def test_the_checker_tells_a_reach_from_outside_from_one_inside_the_module() -> None:
    source = (
        "class Hold:\n"
        "    def _join(self) -> None:\n"
        "        self._gates = {}\n"
        "hold._gates._join()\n"  # both defined in this module: allowed
        "store._memory.clear()\n"  # defined elsewhere: a reach
        "server.store._committer\n"
    )
    assert reaches_elsewhere(source) == ["5: store._memory", "6: server.store._committer"]


def test_no_cache_module_or_cache_test_reaches_a_private_attribute_of_another_module() -> None:
    found: list[str] = []
    for name in CHECKED:
        for path in sorted((REPO / name).rglob("*.py")):
            relative = path.relative_to(REPO)
            found += [f"{relative}:{at}" for at in reaches_elsewhere(path.read_text())]
    assert found == []
