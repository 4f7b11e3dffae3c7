"""Imports point one way: the model library knows nothing of the UI and prints nothing."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_PACKAGES = {"streamlit", "plotly", "bertviz", "viz", "app_lib", "pages"}
CLI_ENTRIES = {"main", "_main"}  # command-line entry points may print; the library may not


def imported_top_level(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def calls_print(path: Path) -> bool:
    """True when print is called anywhere outside a function named main."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in CLI_ENTRIES:
            allowed |= {id(n) for n in ast.walk(node)}
    return any(
        isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print" and id(n) not in allowed
        for n in ast.walk(tree)
    )


def model_files():
    return sorted((ROOT / "model").rglob("*.py"))


def test_model_imports_no_ui():
    offenders = {str(p.relative_to(ROOT)): imported_top_level(p) & UI_PACKAGES for p in model_files()}
    assert not {k: v for k, v in offenders.items() if v}


def test_model_library_does_not_print():
    printing = [str(p.relative_to(ROOT)) for p in model_files() if calls_print(p)]
    assert not printing
