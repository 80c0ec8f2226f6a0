"""The shape rules of docs/architecture.md, checked on the source: layers import down, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
MAX_LINES = 400
MAX_CONSTRUCTOR_ARGS = 8

# What each layer must not import (architecture.md "The layers (imports point down only)").
FORBIDDEN_IMPORTS = {
    "domain": ("shared.services", "shared.adapters", "functions", "azure"),
    "adapters": ("shared.services", "functions"),
    "services": ("functions",),
}


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_module_under_shared_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules(SHARED)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("layer", sorted(FORBIDDEN_IMPORTS))
def test_layers_import_down_only(layer: str) -> None:
    wrong: list[str] = []
    for path in _modules(SHARED / layer):
        for name in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if name.startswith(FORBIDDEN_IMPORTS[layer]):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_no_class_takes_more_than_8_constructor_arguments() -> None:
    wide: list[str] = []
    for path in _modules(SHARED) + _modules(ROOT / "functions"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args
                    count = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs) - 1
                    if count > MAX_CONSTRUCTOR_ARGS:
                        wide.append(f"{path.relative_to(ROOT)}:{node.name} takes {count}")
    assert wide == []
