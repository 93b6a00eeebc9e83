"""Trigonometric and hyperbolic functions, NumPy's names, with PyTorch's derivatives at the edges.

Where a derivative is infinite (arcsin and arccos at ±1, arccosh at 1, arctanh at ±1) it is
inf, as PyTorch gives; outside the domain it is NaN like the value. arctan2 at (0, 0) has
zero gradients (PyTorch's choice); hypot at (0, 0) has NaN ones (0/0, as in PyTorch). sinc is
smooth at 0 and its derivatives of every order there are the mathematical ones.
"""

from __future__ import annotations

import math

from devgrad.core import Tensor
from devgrad.ops.elementwise import Where, sqrt
from devgrad.ops.ufunc import Binary, Scaled, Unary, apply_binary


class Sin(Unary):
    __slots__ = ()
    ufunc = "sin"

    def derivative(self, x, y):
        return cos(x)


class Cos(Unary):
    __slots__ = ()
    ufunc = "cos"

    def derivative(self, x, y):
        return -sin(x)


class Tan(Unary):
    __slots__ = ()
    ufunc = "tan"
    save_inputs = False
    save_output = True

    def derivative(self, x, y):
        return 1.0 + y * y


class Arcsin(Unary):
    __slots__ = ()
    ufunc = "arcsin"

    def derivative(self, x, y):
        return 1.0 / sqrt(1.0 - x * x)


class Arccos(Unary):
    __slots__ = ()
    ufunc = "arccos"

    def derivative(self, x, y):
        return -1.0 / sqrt(1.0 - x * x)


class Arctan(Unary):
    __slots__ = ()
    ufunc = "arctan"

    def derivative(self, x, y):
        return 1.0 / (x * x + 1.0)


class Sinh(Unary):
    __slots__ = ()
    ufunc = "sinh"

    def derivative(self, x, y):
        return cosh(x)


class Cosh(Unary):
    __slots__ = ()
    ufunc = "cosh"

    def derivative(self, x, y):
        return sinh(x)


class Arcsinh(Unary):
    __slots__ = ()
    ufunc = "arcsinh"

    def derivative(self, x, y):
        return 1.0 / sqrt(x * x + 1.0)


class Arccosh(Unary):
    __slots__ = ()
    ufunc = "arccosh"

    def derivative(self, x, y):
        return 1.0 / sqrt(x * x - 1.0)


class Arctanh(Unary):
    __slots__ = ()
    ufunc = "arctanh"

    def derivative(self, x, y):
        return 1.0 / (1.0 - x * x)


# Below this |x| sinc' is its Taylor polynomial: the closed form cancels catastrophically near 0
# and is 0/0 at 0, where the polynomial gives the exact derivatives of every order.
_SINC_SERIES = 1e-2


class Sinc(Unary):
    """sin(πx)/(πx), 1 at 0 (NumPy's normalised sinc)."""

    __slots__ = ()
    ufunc = "sinc"

    def derivative(self, x, y):
        near_zero = abs(x.data) < _SINC_SERIES
        safe = Where.apply(1.0, x, cond=near_zero)  # the closed form only where it is used
        closed = (cos(safe * math.pi) - sinc(safe)) / safe
        # and the polynomial only where it is used: x⁴ overflows (float32 from |x| ~ 1e10) and its
        # inf·0 in the unused branch's gradient would be NaN
        small = Where.apply(x, 0.0, cond=near_zero)
        p2 = math.pi * math.pi
        x2 = small * small
        series = small * (-p2 / 3.0 + x2 * (p2 * p2 / 30.0 - x2 * (p2 * p2 * p2 / 840.0)))
        return Where.apply(series, closed, cond=near_zero)


class Deg2rad(Scaled):
    __slots__ = ()
    ufunc = "deg2rad"
    factor = math.pi / 180.0


class Rad2deg(Scaled):
    __slots__ = ()
    ufunc = "rad2deg"
    factor = 180.0 / math.pi


class Arctan2(Binary):
    """arctan2(a, b), the angle of the point (b, a)."""

    __slots__ = ()
    ufunc = "arctan2"

    def derivatives(self, g, a, b, need_a, need_b):
        recip = 1.0 / (a * a + b * b)
        recip = Where.apply(0.0, recip, cond=self.xp.isinf(recip.data))  # where a² + b² is 0: PyTorch's choice
        return g * b * recip if need_a else None, g * -a * recip if need_b else None


class Hypot(Binary):
    """sqrt(a² + b²) without overflow."""

    __slots__ = ()
    ufunc = "hypot"
    save_output = True

    def derivatives(self, g, a, b, need_a, need_b):
        h = self.output()
        return g * a / h if need_a else None, g * b / h if need_b else None


def sin(x: Tensor) -> Tensor:
    """Sine, elementwise."""
    return Sin.apply(x)


def cos(x: Tensor) -> Tensor:
    """Cosine, elementwise."""
    return Cos.apply(x)


def tan(x: Tensor) -> Tensor:
    """Tangent, elementwise."""
    return Tan.apply(x)


def arcsin(x: Tensor) -> Tensor:
    """Inverse sine; the gradient at ±1 is inf."""
    return Arcsin.apply(x)


def arccos(x: Tensor) -> Tensor:
    """Inverse cosine; the gradient at ±1 is -inf."""
    return Arccos.apply(x)


def arctan(x: Tensor) -> Tensor:
    """Inverse tangent, elementwise."""
    return Arctan.apply(x)


def arctan2(x1, x2) -> Tensor:
    """The angle of (x2, x1) in (-π, π]; gradients 0 at (0, 0), as PyTorch's atan2."""
    return apply_binary(Arctan2, x1, x2)


def hypot(x1, x2) -> Tensor:
    """sqrt(x1² + x2²), elementwise; gradients NaN at (0, 0), as PyTorch's."""
    return apply_binary(Hypot, x1, x2)


def sinh(x: Tensor) -> Tensor:
    """Hyperbolic sine, elementwise."""
    return Sinh.apply(x)


def cosh(x: Tensor) -> Tensor:
    """Hyperbolic cosine, elementwise."""
    return Cosh.apply(x)


def arcsinh(x: Tensor) -> Tensor:
    """Inverse hyperbolic sine, elementwise."""
    return Arcsinh.apply(x)


def arccosh(x: Tensor) -> Tensor:
    """Inverse hyperbolic cosine; the gradient at 1 is inf."""
    return Arccosh.apply(x)


def arctanh(x: Tensor) -> Tensor:
    """Inverse hyperbolic tangent; the gradient at ±1 is inf."""
    return Arctanh.apply(x)


def sinc(x: Tensor) -> Tensor:
    """NumPy's normalised sinc, sin(πx)/(πx) (1 at 0)."""
    return Sinc.apply(x)


def deg2rad(x: Tensor) -> Tensor:
    """Degrees to radians."""
    return Deg2rad.apply(x)


def rad2deg(x: Tensor) -> Tensor:
    """Radians to degrees."""
    return Rad2deg.apply(x)


radians = deg2rad
degrees = rad2deg
