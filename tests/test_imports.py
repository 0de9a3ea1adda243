"""The import graph: no cycles, the product never imports the tools, the simulators never import the product.

Modules are read with `ast`, not imported. An edge is an import: `import a.b` -> a.b; `from a import b`
-> a.b when that is a module, else a. The cycle check counts imports at module level AND inside
functions (a lazy import hides a cycle, it does not remove it), and leaves out only imports under
`if TYPE_CHECKING:`, which never run (annotations only, with `from __future__ import annotations`).
The layering checks (product vs tools, simulators vs product) count every import, wherever it sits.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"plantbridge": ROOT / "plantbridge", "plantbridge_devtools": ROOT / "devtools" / "plantbridge_devtools"}


@dataclass(frozen=True)
class Import:
    target: str
    runs: bool  # False under `if TYPE_CHECKING:` (never executed)


def module_files() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, runs: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, runs) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    found.append(Import(sub if sub in modules else base, runs))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), runs)
            else:
                visit(child, runs)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), True)
    return found


@functools.cache
def import_graph(*, runtime_only: bool) -> dict[str, set[str]]:
    modules = module_files()
    return {name: {imp.target for imp in imports_of(name, path, modules)
                   if imp.target in modules and imp.target != name and (imp.runs or not runtime_only)}
            for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_the_parser_tells_lazy_and_type_only_imports(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("from typing import TYPE_CHECKING\nimport x.y\nif TYPE_CHECKING:\n    from p import q\n"
                    "def f():\n    from .sib import z\n", encoding="utf-8")
    found = imports_of("pkg.m", path, {"pkg.sib.z": path})
    assert Import("x.y", True) in found and Import("p", False) in found and Import("pkg.sib.z", True) in found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_known_edges() -> None:
    """Guards the parser: a graph without edges would pass the cycle test vacuously."""
    graph = import_graph(runtime_only=True)
    assert "plantbridge.canonical.order" in graph["plantbridge.workflows.production_order"] or any(
        target.startswith("plantbridge.canonical") for target in graph["plantbridge.workflows.production_order"])
    assert "plantbridge.gateway.app" in graph
    assert sum(len(targets) for targets in graph.values()) > 200


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycles(package: str) -> None:
    graph = import_graph(runtime_only=True)
    cycles = [cycle for cycle in find_cycles(graph) if cycle[0].split(".")[0] == package]
    shown = "; ".join(" <-> ".join(cycle) for cycle in cycles)
    assert cycles == [], f"import cycles (imports that run, lazy ones included): {shown}"


def test_the_product_never_imports_the_tools() -> None:
    graph = import_graph(runtime_only=False)
    offenders = {name: sorted(t for t in targets if t.startswith("plantbridge_devtools"))
                 for name, targets in graph.items() if name.startswith("plantbridge.")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_simulators_import_nothing_of_plantbridge() -> None:
    """They play foreign systems (ARCHITECTURE): SAP does not import plantbridge's models."""
    modules = module_files()
    offenders = {}
    for name, path in modules.items():
        if name.startswith("plantbridge_devtools.simulators"):
            bad = sorted({imp.target for imp in imports_of(name, path, modules)
                          if imp.target.split(".")[0] == "plantbridge"
                          or (imp.target.startswith("plantbridge_devtools")
                              and not imp.target.startswith("plantbridge_devtools.simulators"))})
            if bad:
                offenders[name] = bad
    assert offenders == {}
