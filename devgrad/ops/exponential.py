"""Exponentials and logarithms beyond exp and log: exp2, expm1, log1p, log2, log10, logaddexp,
logaddexp2, with PyTorch's derivative formulas (so their values at 0, ±inf and NaN are PyTorch's).
"""

from __future__ import annotations

import math

from devgrad.core import Tensor
from devgrad.ops.elementwise import exp
from devgrad.ops.ufunc import Binary, Unary, apply_binary


class Exp2(Unary):
    __slots__ = ()
    ufunc = "exp2"
    save_inputs = False
    save_output = True

    def derivative(self, x, y):
        return y * math.log(2.0)


class Expm1(Unary):
    __slots__ = ()
    ufunc = "expm1"
    save_inputs = False
    save_output = True

    def derivative(self, x, y):
        return y + 1.0


class Log1p(Unary):
    __slots__ = ()
    ufunc = "log1p"

    def backward(self, g):
        return g / (self.inputs[0] + 1.0)


class Log2(Unary):
    __slots__ = ()
    ufunc = "log2"

    def backward(self, g):
        return g / (self.inputs[0] * math.log(2.0))


class Log10(Unary):
    __slots__ = ()
    ufunc = "log10"

    def backward(self, g):
        return g / (self.inputs[0] * math.log(10.0))


class Logaddexp(Binary):
    """log(exp(a) + exp(b)) without overflow."""

    __slots__ = ()
    ufunc = "logaddexp"

    def derivatives(self, g, a, b, need_a, need_b):
        return (g / (exp(b - a) + 1.0) if need_a else None,
                g / (exp(a - b) + 1.0) if need_b else None)


class Logaddexp2(Binary):
    """log2(2**a + 2**b) without overflow."""

    __slots__ = ()
    ufunc = "logaddexp2"

    def derivatives(self, g, a, b, need_a, need_b):
        return (g / (exp2(b - a) + 1.0) if need_a else None,
                g / (exp2(a - b) + 1.0) if need_b else None)


def exp2(x: Tensor) -> Tensor:
    """2 ** x, elementwise."""
    return Exp2.apply(x)


def expm1(x: Tensor) -> Tensor:
    """exp(x) - 1, accurate for small x."""
    return Expm1.apply(x)


def log1p(x: Tensor) -> Tensor:
    """log(1 + x), accurate for small x."""
    return Log1p.apply(x)


def log2(x: Tensor) -> Tensor:
    """Base-2 logarithm."""
    return Log2.apply(x)


def log10(x: Tensor) -> Tensor:
    """Base-10 logarithm."""
    return Log10.apply(x)


def logaddexp(x1, x2) -> Tensor:
    """log(exp(x1) + exp(x2)), elementwise and stable."""
    return apply_binary(Logaddexp, x1, x2)


def logaddexp2(x1, x2) -> Tensor:
    """log2(2**x1 + 2**x2), elementwise and stable."""
    return apply_binary(Logaddexp2, x1, x2)
