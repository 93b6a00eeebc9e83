"""Powers with their own NumPy names: square, reciprocal, cbrt (PyTorch's formulas where it has them)."""

from __future__ import annotations

from devgrad.core import Tensor
from devgrad.ops.ufunc import Unary


class Square(Unary):
    __slots__ = ()
    ufunc = "square"
    array_backward = True

    def backward(self, g):
        return g * (self.operands(g)[0] * 2.0)


class Reciprocal(Unary):
    __slots__ = ()
    ufunc = "reciprocal"
    save_inputs = False
    save_output = True
    array_backward = True

    def backward(self, g):
        y = self.result(g)
        return -g * (y * y)


class Cbrt(Unary):
    """The real cube root (negative for negative x); the derivative 1/(3·cbrt(x)²) is inf at 0."""

    __slots__ = ()
    ufunc = "cbrt"
    save_inputs = False
    save_output = True

    def derivative(self, x, y):
        return 1.0 / (y * y * 3.0)


def square(x: Tensor) -> Tensor:
    """x², elementwise."""
    return Square.apply(x)


def reciprocal(x: Tensor) -> Tensor:
    """1/x, elementwise."""
    return Reciprocal.apply(x)


def cbrt(x: Tensor) -> Tensor:
    """The real cube root, elementwise."""
    return Cbrt.apply(x)
