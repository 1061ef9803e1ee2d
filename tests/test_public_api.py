"""No module reaches into another package's private parts.

A private attribute (`obj._name`) of a dependency can vanish in any release: tomlkit 0.15 dropped
`Container._insert_after` and every profile edit that needed it failed. This test reads the
project's own sources and fails on `x._name` where `_name` is not a name the project defines
itself (on `self` or `cls`, as a function, class, variable, parameter or import alias).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    path
    for folder in ("digest", "tests", "bench")
    for path in (ROOT / folder).rglob("*.py")
    if ".venv" not in path.parts
)
# Underscore names that are the documented public API of the standard library.
DOCUMENTED = frozenset(
    {
        "_replace",  # namedtuple
        "_asdict",
        "_fields",
        "_field_defaults",
        "_make",
        "_exit",  # os._exit
        "_current_frames",  # sys
        "_getframe",
    }
)


class Access(NamedTuple):
    """One `value._name` in a source file."""

    path: Path
    line: int
    name: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: .{self.name}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in {"self", "cls"}


def defined_names(tree: ast.AST) -> Iterator[str]:
    """Every private name the module defines itself."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id
        elif isinstance(node, ast.arg):
            yield node.arg
        elif isinstance(node, ast.alias):
            yield node.asname or node.name.split(".")[-1]
        elif (
            isinstance(node, ast.Attribute)
            and _is_self(node.value)
            and isinstance(node.ctx, ast.Store)
        ):
            yield node.attr


def accesses(path: Path, tree: ast.AST) -> Iterator[Access]:
    """Every `value._name` outside `self` and `cls`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and not _is_self(node.value):
            yield Access(path, node.lineno, node.attr)


def foreign_private_accesses(paths: list[Path]) -> list[Access]:
    """The private accesses whose name the project never defines: another package's."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in paths}
    own = {name for tree in trees.values() for name in defined_names(tree) if _private(name)}
    return [
        access
        for path, tree in trees.items()
        for access in accesses(path, tree)
        if access.name not in own and access.name not in DOCUMENTED
    ]


def test_no_module_uses_a_private_attribute_of_another_package() -> None:
    found = foreign_private_accesses(SOURCES)
    assert not found, "private API of another package:\n" + "\n".join(map(str, found))


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        pytest.param("c.value._insert_after('a', 'b', 1)\n", ["_insert_after"], id="library-call"),
        pytest.param("t = make()\nt._pool = 1\n", ["_pool"], id="library-attribute-set"),
        pytest.param("class A:\n    def f(self):\n        self._x = 1\n", [], id="own-self"),
        pytest.param(
            "class A:\n    def __init__(self):\n        self._x = 1\ndef g(a):\n    return a._x\n",
            [],
            id="own-attribute-of-another-object",
        ),
        pytest.param("p = point._replace(x=1)\n", [], id="namedtuple-api"),
        pytest.param("import os\nos._exit(1)\n", [], id="documented-stdlib"),
        pytest.param("x.__class__\n", [], id="dunder"),
    ],
)
def test_the_check_tells_own_names_from_foreign_ones(
    tmp_path: Path, source: str, flagged: list[str]
) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)
    assert [a.name for a in foreign_private_accesses([path])] == flagged
