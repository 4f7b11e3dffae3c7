"""Imports point one way, checked on the source (AST), layer by layer:

    model/     tensors            imports no other layer, no UI library, prints nothing
    explain/   typed records      imports only model/ (no Streamlit, plotly, bertviz)
    viz/       figures            imports model/ and explain/, never Streamlit or the UI package
    app_lib/   the UI package     everything below, never a page
    pages/     layout and text    no torch or numpy: a page computes nothing

Also checked: figure builders and records take typed parameters (no `Any`), and the app layers'
files stay short enough to read.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("model", "explain", "viz", "app_lib", "pages")
UI_LIBRARIES = {"streamlit", "plotly", "bertviz"}
FORBIDDEN = {
    "model": {"explain", "viz", "app_lib", "pages"} | UI_LIBRARIES,
    "explain": {"viz", "app_lib", "pages"} | UI_LIBRARIES,
    "viz": {"app_lib", "pages", "streamlit"},
    "app_lib": {"pages"},
    "pages": {"torch", "numpy"},
}
CLI_ENTRIES = {"main", "_main"}  # command-line entry points may print; the library may not
MAX_APP_FILE_LINES = 300


def python_files(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


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


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_imports_only_what_lies_below_it(layer):
    assert python_files(layer), f"{layer}/ has no Python files"
    offenders = {str(p.relative_to(ROOT)): sorted(imported_top_level(p) & FORBIDDEN[layer])
                 for p in python_files(layer)}
    assert not {k: v for k, v in offenders.items() if v}


def test_app_py_only_routes():
    assert not imported_top_level(ROOT / "app.py") & {"torch", "numpy", "model", "explain", "viz"}


def test_the_checker_sees_forbidden_imports(tmp_path):
    sample = tmp_path / "page.py"
    sample.write_text("import torch.nn\nfrom numpy import array\nfrom .local import x\n", encoding="utf-8")
    assert imported_top_level(sample) == {"torch", "numpy"}


def test_model_library_does_not_print():
    printing = [str(p.relative_to(ROOT)) for p in python_files("model") if calls_print(p)]
    assert not printing


def public_parameter_annotations(path: Path) -> list[tuple[str, str]]:
    """(function, annotation) for every parameter of the module's public top-level functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            found += [(node.name, ast.unparse(a.annotation)) for a in arguments if a.annotation is not None]
    return found


@pytest.mark.parametrize("layer", ["explain", "viz"])
def test_records_and_figures_take_typed_parameters(layer):
    untyped = [(str(p.relative_to(ROOT)), name, annotation) for p in python_files(layer)
               for name, annotation in public_parameter_annotations(p) if re.search(r"\bAny\b", annotation)]
    assert not untyped


def test_explain_returns_records_not_string_keyed_dicts():
    offenders = []
    for path in python_files("explain"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.returns is not None:
                returned = ast.unparse(node.returns)
                if returned.startswith(("dict", "list[dict", "tuple[dict")):
                    offenders.append(f"{path.name}:{node.name} -> {returned}")
    assert not offenders


@pytest.mark.parametrize("layer", ["explain", "viz", "app_lib", "pages"])
def test_app_files_stay_short(layer):
    long = {str(p.relative_to(ROOT)): n for p in python_files(layer)
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_APP_FILE_LINES}
    assert not long, f"split these files (over {MAX_APP_FILE_LINES} lines): {long}"
