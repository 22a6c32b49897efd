"""The package's layout: imports point one way (run.py -> modes -> library ->
config / errors), with no cycle, and modules stay small.

The import graph is built by parsing every module of `simclr_controlled`
(imports inside functions included), without importing anything. An import
of a submodule (`from simclr_controlled.modes import train`) is an edge to
that submodule; the implicit import of its parent package is not counted.
"""
from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "simclr_controlled"
MODES = f"{PACKAGE}.modes"
MAX_LINES = 400
# Modules over MAX_LINES (none) and import cycles (none) that are accepted.
TOO_LONG_ALLOWED: set[str] = set()
KNOWN_CYCLES: list[list[str]] = []


def package_modules() -> dict[str, str]:
    """Dotted module name -> path, for every .py file of the package."""
    modules = {}
    for folder, dirs, names in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, ROOT)[:-len(".py")].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in its code)."""
    modules = package_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        is_package = path.endswith("__init__.py")
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.name
                    while name and name not in modules:  # `import a.b.c` where c is not a module
                        name = name.rpartition(".")[0]
                    if name:
                        edges.add(name)
            elif isinstance(node, ast.ImportFrom):
                source = (_resolve_relative(module, is_package, node.level, node.module) if node.level
                          else node.module or "")
                if not source.startswith(PACKAGE):
                    continue
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in modules:
                        edges.add(sub)  # a submodule
                    elif source in modules:
                        edges.add(source)  # a name defined in the module
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def is_mode(module: str) -> bool:
    return module == MODES or module.startswith(MODES + ".")


def test_graph_sees_the_imports_inside_functions():
    graph = import_graph()
    assert f"{PACKAGE}.workdir" in graph[MODES]
    assert f"{MODES}.train" in graph[MODES]
    assert f"{MODES}.probe" in graph[MODES]  # imported inside run()
    assert f"{PACKAGE}.train" in graph[f"{MODES}.train"]  # imported inside train_one_model()
    assert f"{PACKAGE}.errors" in graph[f"{PACKAGE}.config"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    assert [c for c in find_cycles(import_graph()) if c not in KNOWN_CYCLES] == []


def test_no_library_module_imports_the_modes():
    hits = {module: sorted(t for t in targets if is_mode(t))
            for module, targets in import_graph().items() if not is_mode(module)}
    assert {m: t for m, t in hits.items() if t} == {}


def test_config_and_errors_import_no_mode_or_library_above_them():
    graph = import_graph()
    assert graph[f"{PACKAGE}.errors"] == set()
    assert not any(is_mode(t) for t in graph[f"{PACKAGE}.config"])


def test_modules_are_at_most_400_lines():
    too_long = {}
    for path in package_modules().values():
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
        if n > MAX_LINES and rel not in TOO_LONG_ALLOWED:
            too_long[rel] = n
    assert too_long == {}
