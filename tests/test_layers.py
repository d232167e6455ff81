"""Imports only point down the layers drawn in the README's Development section."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "nuggy"

#: layer of each top-level module / package of nuggy (higher number = higher layer)
LAYERS = {
    "errors": 0,
    "limits": 0,
    "filters": 0,
    "io": 0,
    "registry": 0,
    "sources": 1,
    "models": 1,
    "runtime": 2,
    "matting": 2,
    "pipeline": 3,
    "api": 4,
    "cli": 4,
    "server": 4,
    "ui": 4,
    "train": 4,
    "eval": 4,
    "distributed": 4,
    "batch": 4,
    "hotfolder": 4,
    "video": 4,
    "interactive": 4,
    "hints": 3,
}


def _imports(path: Path) -> set[str]:
    """Top-level nuggy modules imported anywhere in ``path`` (lazy imports included)."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(SRC).with_suffix("").parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(rel[: len(rel) - node.level])
                mod = ".".join(base + ([node.module] if node.module else []))
                names = ["nuggy." + mod if mod else "nuggy"]
                if not node.module:
                    names = [f"nuggy.{'.'.join(base + [a.name])}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for n in names:
            parts = n.split(".")
            if parts[0] == "nuggy" and len(parts) > 1:
                found.add(parts[1])
    return found


FILES = sorted(
    p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] not in ("__init__.py", "__main__.py")
)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    own = path.relative_to(SRC).with_suffix("").parts[0]
    if own not in LAYERS:
        pytest.fail(f"{own}: add the module to LAYERS (and to the README's layer picture)")
    up = sorted(m for m in _imports(path) - {own} if LAYERS.get(m, -1) > LAYERS[own])
    assert not up, f"{path.relative_to(SRC)} (layer {LAYERS[own]}) imports from higher layers: {up}"
