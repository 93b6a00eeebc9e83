"""The layers of devgrad, checked from the imports themselves.

Each module imports only modules of its own layer or of the layers below it, in the order
docs/architecture.md gives: backend → core → ops → func → nn → optim → data → experiment →
cli; and there is no import cycle, inside a layer or across. Every import statement counts, at
module level or not. The package façade (devgrad/__init__.py) imports everything and is imported
by nothing inside devgrad. Imports inside functions are not allowed (ruff PLC0415), except of
optional third-party packages.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "devgrad"

# Module-name prefixes by layer, lowest first; the first matching prefix wins.
LAYERS = [
    ("backend", ["devgrad.version", "devgrad.backend"]),
    ("core", ["devgrad.core", "devgrad.creation", "devgrad.random", "devgrad.io", "devgrad.gradcheck",
              "devgrad.capture", "devgrad.capture_deps", "devgrad.cpu_capture", "devgrad.cpu_fold", "devgrad.cpu_fuse",
              "devgrad.cpu_numpy", "devgrad.cpu_plan",
              "devgrad.viz",
              "devgrad.viz_draw", "devgrad.interop"]),
    ("ops", ["devgrad.ops", "devgrad.linalg"]),
    ("func", ["devgrad.func"]),
    ("nn", ["devgrad.nn", "devgrad.onnx"]),
    ("optim", ["devgrad.optim"]),
    ("data", ["devgrad.data"]),
    ("experiment", ["devgrad.experiment", "devgrad.bench", "devgrad.warmup", "devgrad.lecture",
                    "devgrad.lecture_pool"]),
    ("cli", ["devgrad.cli", "devgrad.cli_parser", "devgrad.cli_commands", "devgrad.cli_bench", "devgrad.__main__",
             "devgrad._api", "devgrad"]),
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


def _devgrad_imports(tree: ast.AST, module: str) -> set[str]:
    """The devgrad modules the import statements under ``tree`` name (a package's ``from P import m``
    is module ``P.m`` when that is a module)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "devgrad"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "devgrad":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found - {module}


def imports_of(module: str) -> set[str]:
    """The devgrad modules ``module`` imports: every import statement, at module level, inside a
    function or under ``if TYPE_CHECKING``."""
    return _devgrad_imports(ast.parse(MODULES[module].read_text(encoding="utf-8")), module)


def test_no_function_imports_a_devgrad_module():
    """Imports inside functions are for optional third-party packages only: one of a devgrad
    module would hide a layer crossed the wrong way or a circle (ruff's PLC0415 says the same)."""
    inside = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inside += [f"{module}.{node.name} imports {t}" for t in sorted(_devgrad_imports(node, module))]
    assert not inside, "\n".join(inside)


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


# What a CPU-only process never needs: CuPy, the cuBLAS binding (ctypes), the GEMM planner, the
# CUDA kernel sources and launchers, and subprocess (Graphviz, which only the pictures use).
_CUDA_ONLY = ("cupy", "cupyx", "devgrad.backend.cublas", "devgrad.backend.gemm", "devgrad.backend.cupy",
              "devgrad.backend.cuda_kernels", "devgrad.backend.cuda_gemm", "devgrad.backend.cuda_sources",
              "devgrad.nn._cuda_kernels", "devgrad.optim._cuda_kernels", "devgrad.experiment._cuda_kernels",
              "subprocess")

_CPU_PROCESS = """
import json, sys
import numpy  # its own imports (ctypes among them) are not devgrad's
before = set(sys.modules)
import devgrad as dg
import devgrad.experiment._kernels
x = dg.tensor([[1.0, 2.0], [3.0, 4.0]])
model = dg.nn.MLP([2, 4, 2], dropout=0.1)
opt = dg.optim.Adam(model.parameters())
loss = dg.nn.functional.cross_entropy(model(x), dg.tensor([0, 1])) + dg.nn.functional.mse_loss(x, x)
loss.backward()
opt.step()
cpu = dg.device("cpu")
cpu.kernels.class_sums(x.data, dg.tensor([0, 1]).data, loss.data, 2, 0.0, numpy.zeros(()), numpy.zeros((), int))
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_a_cpu_only_process_imports_no_cuda_code():
    """``import devgrad`` and a training step on the CPU (a loss, dropout, Adam, the runner's sums)
    load no CUDA module: each device kind's code, and each layer's CUDA kernels, are imported
    when a CUDA device first uses them."""
    done = subprocess.run([sys.executable, "-c", _CPU_PROCESS], capture_output=True, text=True, check=False,
                          cwd=PACKAGE.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "devgrad.nn._kernels" in loaded and "devgrad.optim._kernels" in loaded  # the check sees imports
    wrong = [m for m in loaded if m in _CUDA_ONLY or m.split(".")[0] in ("cupy", "cupyx", "cupy_backends")]
    assert not wrong, f"a CPU-only process imported {wrong}"


# The backward walk may keep its length: one loop over the graph, read top to bottom.
LONG_FUNCTIONS_ALLOWED = {("core/backward.py", "run_backward"): 80}


def sizes_over_the_limits(package: Path = PACKAGE) -> list[str]:
    """Modules over 400 lines and functions over 60 (outside the allowed list) in ``package``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(package).as_posix()
        if len(text.splitlines()) > 400:
            found.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONG_FUNCTIONS_ALLOWED.get((rel, node.name), 60):
                    found.append(f"{rel}:{node.lineno} {node.name}: {length} lines")
    return found


def test_no_module_over_400_lines_and_no_function_over_60():
    assert sizes_over_the_limits() == []


def test_the_size_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    assert sizes_over_the_limits(tmp_path) == ["long.py:1 long: 62 lines"]
