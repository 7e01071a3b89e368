"""The application's import rules where import-linter cannot look: top-level modules.

import-linter builds its graph from packages only, so ``service.py`` and its sibling
context modules are checked here, by reading their import statements: they import the
standard library, the eventsourcing library, ``domain``, ``runtime`` and each other, and
the contexts never import ``service`` (the entry point composes them, not the other way round).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINT = "service"
APPLICATION = sorted(path.stem for path in ROOT.glob("service*.py"))
ALLOWED_THIRD_PARTY = frozenset({"eventsourcing"})
OURS = frozenset({"domain", "runtime"})
"""The packages besides each other the application modules may import."""


def imported_modules(source: str) -> list[str]:
    """Every absolute module an import statement in ``source`` names."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def broken_rules(module: str, source: str) -> list[str]:
    """The imports of application ``module`` that break the rules, as readable lines."""
    broken = []
    for name in imported_modules(source):
        root = name.split(".")[0]
        if root in APPLICATION:
            if root == ENTRY_POINT and module != ENTRY_POINT:
                broken.append(f"{module} imports {name}: a context must not import the entry point")
            continue
        if root in OURS or root in ALLOWED_THIRD_PARTY or root in sys.stdlib_module_names:
            if root in {"sqlite3"}:
                broken.append(f"{module} imports {name}: a database driver")
            continue
        broken.append(f"{module} imports {name}: not the domain, a context or a port")
    return broken


def test_the_application_modules_are_found() -> None:
    assert ENTRY_POINT in APPLICATION
    assert len(APPLICATION) > 1


@pytest.mark.parametrize("module", APPLICATION)
def test_an_application_module_imports_only_inward(module: str) -> None:
    source = (ROOT / f"{module}.py").read_text(encoding="utf-8")
    assert broken_rules(module, source) == []


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("from adapters.settings import Settings", "not the domain"),
        ("import psycopg", "not the domain"),
        ("import sqlite3", "a database driver"),
        ("from projections.engine import Table", "not the domain"),
        ("from service import AkteService", "must not import the entry point"),
    ],
)
def test_a_wrong_import_is_caught(source: str, why: str) -> None:
    context = next(module for module in APPLICATION if module != ENTRY_POINT)
    (line,) = broken_rules(context, source)
    assert why in line


def test_every_application_module_is_installed() -> None:
    # Top-level modules are installed only when pyproject.toml names them: one left out
    # works in the checkout and fails in an installed Akte.
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(project["tool"]["setuptools"]["py-modules"]) == set(APPLICATION)
