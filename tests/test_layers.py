"""The shape of the code base: imports point down, no module imports itself in a circle.

Layers, lowest first: `schemas` < `services.runtime` < the four services
(gateway, resolver, builder, launcher) and the event tools (`services.events`)
< the command line (`services.cli`, `services.launch_client`). A module may
import from its own layer's package and from lower layers only; the four
services never import each other. Pure source reading (ast), no imports run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "services")

# Layer of each package prefix (the longest matching prefix wins).
LAYERS = {
    "schemas": 0,
    "services.runtime": 1,
    "services.gateway": 2,
    "services.resolver": 2,
    "services.builder": 2,
    "services.launcher": 2,
    "services.events": 2,
    "services.launch_client": 3,
    "services.cli": 3,
    "services.__main__": 3,
    "services": 3,
}
SERVICES = ("services.gateway", "services.resolver", "services.builder", "services.launcher", "services.events")

# Imports inside functions, each with its reason; anything else inside a function
# is an import moved out of the way of a circle, which this test refuses.
LAZY_IMPORTS_ALLOWED = {
    # The command lines import only what the chosen command needs (start-up time).
    "services.cli",
    "services.events.cli",
    # The OTLP exporter (and its protobuf stack) is loaded only when configured.
    "services.runtime.telemetry",
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) of our own packages, TYPE_CHECKING blocks left out."""
    tree = ast.parse(path.read_text())
    package = _package_of(module, path)
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                # `from pkg import submodule` imports the submodule.
                for alias in child.names:
                    candidate = f"{target}.{alias.name}"
                    found.append((candidate if candidate in MODULES else target, top))
            visit(child, top)

    visit(tree, True)
    return [(name, top) for name, top in found if name.split(".")[0] in PACKAGES]


def _layer(module: str) -> tuple[int, str]:
    best = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYERS[best], best


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    own_layer, own_room = _layer(module)
    for imported, _ in _imports(module, MODULES[module]):
        layer, room = _layer(imported)
        assert layer <= own_layer, f"{module} imports {imported}, a higher layer"
        if layer == own_layer and own_room in SERVICES:
            assert room == own_room, f"{module} imports {imported}: services do not import each other"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_imports_hidden_in_functions(module: str) -> None:
    if module in LAZY_IMPORTS_ALLOWED:
        return
    tree = ast.parse(MODULES[module].read_text())
    hidden = [
        ast.unparse(node)
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    assert hidden == [], f"{module} imports inside a function: {hidden}"


def test_no_module_imports_itself_in_a_circle() -> None:
    graph = {m: {name for name, _ in _imports(m, p) if name in MODULES and name != m} for m, p in MODULES.items()}
    # A package's __init__ importing its own submodules is how packages export; a
    # submodule importing its own package's __init__ back would be the circle.
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt):] + [node, nxt] if nxt in stack else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, stack + [node]):
                return True
        state[node] = 2
        return False

    for module in sorted(graph):
        if state.get(module) is None and visit(module, []):
            break
    assert not cycle, " -> ".join(cycle)
