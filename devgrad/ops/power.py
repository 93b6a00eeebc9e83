"""Powers: ``a ** b`` with either side a tensor or a scalar, and NumPy's square, reciprocal and cbrt,
differentiable to any order."""

from __future__ import annotations

import math

from devgrad.core import Tensor
from devgrad.ops._util import sum_to
from devgrad.ops.elementwise import BroadcastBinary, Where, binary_op, log, sqrt
from devgrad.ops.ufunc import Unary


class Pow(BroadcastBinary):
    """a ** b. Where smooth, the exact derivatives (both orders of the mixed second derivative
    agree, 1/a at b = 0). PyTorch's conventions at the edges: d(a**0)/da = 0 at a = 0 and
    a = NaN (where b·a**(b-1) is 0·inf or 0·NaN), and d(0**b)/db = 0 for b >= 0 (where a**b·log a
    is 0·(-inf)); 0**b for b < 0 has d/db = -inf. The masks select (a where), so their first
    derivatives are finite; their second derivatives at those edges are PyTorch's (NaN where its
    masked formula meets 0·inf)."""

    __slots__ = ()
    save_inputs = True
    save_output = True

    def forward(self, a, b):
        self._shapes(a, b)
        if b.__class__ is float and b == -0.5:  # PyTorch's rsqrt: the same values at -0.0 and -inf
            return 1.0 / self.device.xp.sqrt(a)
        return a**b

    def backward(self, g):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        ga = gb = None
        if need_a:
            ga = sum_to(g * self._base_derivative(a, b), self.a_shape)
        if need_b:
            gb = sum_to(g * self._exponent_derivative(a, b), self.b_shape)
        return ga, gb

    def _base_derivative(self, a, b):
        """d(a**b)/da = b·a**(b-1), 0 where b = 0 and a is 0 or NaN (``a`` is a Tensor: only then
        is it needed); elsewhere at b = 0 the formula is exact and differentiable in b."""
        if not isinstance(b, Tensor):
            if b == 0:
                return self.const(self.xp.zeros(a.shape, dtype=a.dtype))
            if b == 2:
                return a * 2.0
            return (1.0 / sqrt(a) if b == 0.5 else a ** (b - 1)) * b  # sqrt: x**0.5 is sqrt's twin
        edge = (b.data == 0) & ((a.data == 0) | (a.data != a.data))  # 0·inf and 0·NaN: PyTorch's 0
        return Where.apply(0.0, b * a ** (b - 1), cond=edge)

    def _exponent_derivative(self, a, b):
        """d(a**b)/db = a**b·log a, 0 where a = 0 and b >= 0."""
        b_data = b.data if isinstance(b, Tensor) else b
        if isinstance(a, Tensor):
            edge = (a.data == 0) & (b_data >= 0)
            return Where.apply(0.0, self.output() * log(a), cond=edge)
        if a == 0:
            return self.output() * self.const(self.xp.where(self.xp.asarray(b_data) >= 0, 0.0, -math.inf)
                                              .astype(self.out_data.dtype))
        return self.output() * (math.log(a) if a > 0 else math.nan)


def pow(a, b) -> Tensor:  # noqa: A001 - mirrors the operator's name
    """a ** b; either side may be a scalar."""
    return binary_op(Pow, a, b)


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
