"""The layers of devgrad, checked from the imports themselves.

Each module imports only modules of its own layer or of the layers below it, in the order
docs/architecture.md gives: backend → core → ops → nn → optim → data → experiment →
cli; and there is no import cycle, inside a layer or across. The package façade
(devgrad/__init__.py) imports everything and is imported by nothing inside devgrad. Imports
inside functions are not allowed (ruff PLC0415), except of optional third-party packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "devgrad"

# Module-name prefixes by layer, lowest first; the first matching prefix wins.
LAYERS = [
    ("backend", ["devgrad.version", "devgrad.backend"]),
    ("core", ["devgrad.core", "devgrad.creation", "devgrad.random", "devgrad.io", "devgrad.gradcheck",
              "devgrad.capture", "devgrad.viz", "devgrad.interop"]),
    ("ops", ["devgrad.ops"]),
    ("nn", ["devgrad.nn", "devgrad.onnx"]),
    ("optim", ["devgrad.optim"]),
    ("data", ["devgrad.data"]),
    ("experiment", ["devgrad.experiment", "devgrad.bench", "devgrad.warmup", "devgrad.lecture"]),
    ("cli", ["devgrad.cli", "devgrad.__main__", "devgrad"]),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if module in prefixes or any(module.startswith(p + ".") for p in prefixes if p != "devgrad"):
            return index
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS (and to docs/architecture.md)")


def imports_of(module: str) -> set[str]:
    """The devgrad modules ``module`` imports at module level."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "devgrad"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "devgrad":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found - {module}


def test_every_module_imports_only_its_own_layer_or_lower():
    wrong = []
    for module in MODULES:
        if module == "devgrad":
            continue  # the façade: it imports every layer, on purpose
        for target in imports_of(module):
            if layer_of(target) > layer_of(module):
                wrong.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                             f"({LAYERS[layer_of(target)][0]})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_nothing_inside_devgrad_imports_the_package_facade():
    users = [m for m in MODULES if m not in ("devgrad", "devgrad.__main__") and "devgrad" in imports_of(m)]
    assert not users, f"these import the façade (import the module that holds the name instead): {users}"


def test_there_is_no_import_cycle():
    graph = {m: sorted(imports_of(m) & set(MODULES)) for m in MODULES if m != "devgrad"}
    state: dict = {}
    cycle: list = []

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for target in graph.get(module, []):
            if state.get(target) == "open":
                cycle.extend([*stack[stack.index(target):], target])
                return True
            if target not in state and visit(target, stack):
                return True
        stack.pop()
        state[module] = "done"
        return False

    for module in graph:
        if module not in state and visit(module, []):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_check_sees_a_wrong_import():
    """The layer map is not vacuous: core importing ops would be caught."""
    assert layer_of("devgrad.ops.linalg") > layer_of("devgrad.core")
    assert layer_of("devgrad.experiment.trainer") > layer_of("devgrad.optim")
    assert "devgrad.backend.cublas" in imports_of("devgrad.backend.cuda_kernels")
