"""The backward contract is written once, in core: a formula gets its saved values in the
gradient's kind (``operands``, ``result``, ``constant``) and chooses between an op and an array
kernel with ``Function.for_kind``; no formula in the op or nn layers asks the gradient's kind itself."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

import devgrad as dg
from devgrad.core import Function

PACKAGE = Path(__file__).resolve().parents[2] / "devgrad"
GRADIENT_NAMES = {"g", "gg", "grad", "grad_output", "grad_out"}


def kind_checks(source: str) -> list[int]:
    """Lines of ``source`` that test a gradient's kind: ``isinstance(g, Tensor)`` and the like."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"
                and len(node.args) == 2 and isinstance(node.args[0], ast.Name) and node.args[0].id in GRADIENT_NAMES
                and "Tensor" in ast.unparse(node.args[1])):
            found.append(node.lineno)
    return found


def test_no_formula_outside_core_asks_the_gradients_kind():
    files = sorted((PACKAGE / "ops").rglob("*.py")) + sorted((PACKAGE / "nn").rglob("*.py"))
    assert len(files) > 10
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line}" for path in files
                 for line in kind_checks(path.read_text(encoding="utf-8"))]
    assert not offenders, "use Function.for_kind / operands / result / constant instead: " + ", ".join(offenders)


def test_the_check_sees_a_kind_test():
    planted = "def backward(self, g):\n    if isinstance(g, Tensor):\n        return g\n    return -g\n"
    assert kind_checks(planted) == [2]
    assert kind_checks("def f(x):\n    return isinstance(x, Tensor)\n") == []


def test_for_kind_gives_the_tensor_form_for_a_tensor_and_the_array_form_for_an_array():
    on_tensors, on_arrays = object(), object()
    assert Function.for_kind(dg.tensor([1.0]), on_tensors, on_arrays) is on_tensors
    assert Function.for_kind(np.ones(1), on_tensors, on_arrays) is on_arrays
    subclass_array = np.ones(1).view(type("Traced", (np.ndarray,), {}))  # an ndarray subclass is an array
    assert Function.for_kind(subclass_array, on_tensors, on_arrays) is on_arrays
    subclass_tensor = dg.nn.Parameter(np.ones(1))  # a Tensor subclass is a Tensor
    assert Function.for_kind(subclass_tensor, on_tensors, on_arrays) is on_tensors


def test_the_walk_tells_leaves_from_nodes_of_any_subclass():
    """Gradients reach leaves of Tensor subclasses and pass through nodes of Function subclasses
    made after the walk has seen other types (it remembers per type which one it is)."""

    class Leaf(dg.Tensor):
        __slots__ = ()

    class Twice(Function):
        __slots__ = ()
        array_backward = True

        def forward(self, a):
            return a * 2

        def backward(self, g):
            return g * 2

    leaf = Leaf(np.array([1.0, 2.0]), requires_grad=True)
    param = dg.nn.Parameter(np.array([3.0, 4.0]))
    (Twice.apply(Twice.apply(leaf)) * param).sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), [12.0, 16.0])
    np.testing.assert_array_equal(param.grad.numpy(), [4.0, 8.0])


def test_both_kinds_of_a_picked_formula_agree(device):
    """Linear's backward picks matmul or the GEMM seam, the sum op or the device's reduction."""
    x = dg.tensor(np.arange(6.0).reshape(2, 3), device=device, dtype="float64", requires_grad=True)
    w = dg.tensor(np.arange(12.0).reshape(4, 3) / 7, device=device, dtype="float64", requires_grad=True)
    b = dg.tensor(np.ones(4), device=device, dtype="float64", requires_grad=True)

    def loss():
        return (dg.nn.functional.linear(x, w, b).sigmoid() * dg.tensor(np.arange(8.0).reshape(2, 4),
                                                                        device=device, dtype="float64")).sum()

    first = dg.grad(loss(), [x, w, b])
    graph = dg.grad(loss(), [x, w, b], create_graph=True)
    for a, g in zip(first, graph):
        assert not a.requires_grad and g.requires_grad
        np.testing.assert_allclose(a.numpy(), g.numpy(), rtol=1e-12)
