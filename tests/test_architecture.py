"""The house's import rules (ARCHITECTURE.md), checked on the source: app -> growth ->
{predictors, optimizers}, decision code without torch or SQL, pages only through the services."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "optimizers": ("growth", "predictors", "app", "torch", "lightgbm", "sqlalchemy", "alembic"),
    "predictors": ("growth", "optimizers", "app", "sqlalchemy", "alembic", "ortools", "pyomo"),
    "growth": ("app", "streamlit", "plotly"),
}
"""Top-level modules a package must never import (its own layer and below only)."""
APP_ALLOWED = ("app", "growth.services", "streamlit", "plotly", "pandas")
"""What the Streamlit app may import besides the standard library: its own helpers, the
services and its UI libraries."""


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import statement in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out += [(node.lineno, node.module)]
            if node.module == "growth":  # `from growth import services` names a module
                out += [(node.lineno, f"growth.{alias.name}") for alias in node.names]
    return out


def sources(package: str) -> list[Path]:
    return sorted(p for p in (REPO / package).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_their_own_layer_and_below(package):
    """optimizers/ imports no model or SQL library, predictors/ no solver or SQL, growth/ no UI."""
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sources(package)
        for line, module in imports(path)
        if module.split(".")[0] in FORBIDDEN[package]
    ]
    assert not bad, "\n".join(bad)


def test_app_pages_use_only_the_services():
    """The app imports growth only through growth.services and never edits sys.path."""
    bad = []
    for path in sources("app"):
        text = path.read_text()
        if "sys.path" in text:
            bad.append(f"{path.relative_to(REPO)} edits sys.path")
        for line, module in imports(path):
            allowed = module.split(".")[0] in sys.stdlib_module_names or any(
                module == a or module.startswith(f"{a}.") for a in APP_ALLOWED
            )
            if not allowed and module != "growth":
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_the_rules_catch_a_forbidden_import(tmp_path):
    """The checker sees both import forms (a test that cannot fail is no test)."""
    probe = tmp_path / "probe.py"
    probe.write_text("import torch.nn\nfrom growth import services, world\nfrom . import x\n")
    assert imports(probe) == [
        (1, "torch.nn"),
        (2, "growth"),
        (2, "growth.services"),
        (2, "growth.world"),
    ]


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
MATHS_BLOCKS = {"optimizers/install/model.py:build_model"}
"""Model-building functions that read like the maths, exempt from the function limit."""


def test_modules_and_functions_stay_small():
    """No product module over 500 lines, no function over 80 outside the maths blocks."""
    bad = []
    for package in ("growth", "predictors", "optimizers", "app"):
        for path in sources(package):
            text = path.read_text()
            name = path.relative_to(REPO).as_posix()
            if len(text.splitlines()) > MAX_MODULE_LINES:
                bad.append(f"{name}: {len(text.splitlines())} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES and f"{name}:{node.name}" not in MATHS_BLOCKS:
                        bad.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    assert not bad, "\n".join(bad)
