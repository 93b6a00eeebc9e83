"""Rounding and other piecewise functions of NumPy's: sign, floor, ceil, round, rint, trunc, mod
(remainder, ``%``), floor_divide (``//``), fmod, fmax, fmin, nan_to_num.

Where a function is constant its gradient is 0, also at the jumps (PyTorch's convention), and
zero again at every higher order; floor_divide is piecewise constant too, so both its inputs get
0 (PyTorch's ``floor_divide`` has no derivative and refuses ``backward``). mod and fmod pass
the gradient to the dividend and give the divisor -g·(the quotient), as PyTorch's remainder and
fmod; fmax and fmin give a tie's gradient to the first argument and pick the non-NaN side, as
PyTorch's.
"""

from __future__ import annotations

import numbers

import numpy as np

from devgrad.core import Function, Tensor
from devgrad.ops._util import data_of
from devgrad.ops.elementwise import Where, cast, link_zero, select
from devgrad.ops.elementwise import abs as _abs
from devgrad.ops.ufunc import Binary, Flat, apply_binary


class Sign(Flat):
    __slots__ = ()
    ufunc = "sign"


class Floor(Flat):
    __slots__ = ()
    ufunc = "floor"


class Ceil(Flat):
    __slots__ = ()
    ufunc = "ceil"


class Round(Flat):
    """Half to even, like NumPy (and PyTorch); ``decimals`` as NumPy's."""

    __slots__ = ()
    ufunc = "round"


class Rint(Flat):
    __slots__ = ()
    ufunc = "rint"


class Trunc(Flat):
    __slots__ = ()
    ufunc = "trunc"


class _Division(Binary):
    """A ufunc that divides: with integers, a zero divisor raises ZeroDivisionError, as in Python
    and PyTorch, where NumPy silently gives 0 (the warning devgrad would swallow)."""

    __slots__ = ()

    def forward(self, a, b):
        out = super().forward(a, b)
        if out.dtype.kind in "iu" and self.device.host_reads_are_free and self.device.xp.any(b == 0):
            raise ZeroDivisionError(f"{self.ufunc}: integer division by zero (Python and PyTorch raise, NumPy "
                                    "would give 0); divide floats for inf or NaN, or leave out the zero divisors")
        return out


class Mod(_Division):
    """a - b·floor(a / b): the sign of b, as Python's ``%`` (NumPy's remainder)."""

    __slots__ = ()
    ufunc = "remainder"

    def quotient(self, a, b):
        return self.xp.floor_divide(a, b)

    def derivatives(self, g, a, b, need_a, need_b):
        db = None
        if need_b:
            db = -g * self.const(self.xp.asarray(self.quotient(data_of(a), data_of(b)), dtype=g.dtype))
        return g if need_a else None, db


class FloorDivide(_Division):
    """floor(a / b), NumPy's ``floor_divide`` and Python's ``//`` (PyTorch's too): piecewise
    constant, so the gradient is 0 for both inputs."""

    __slots__ = ()
    ufunc = "floor_divide"

    def derivatives(self, g, a, b, need_a, need_b):
        return (self.const(self.xp.zeros(self.a_shape, dtype=a.dtype)) if need_a else None,
                self.const(self.xp.zeros(self.b_shape, dtype=b.dtype)) if need_b else None)


class Fmod(Mod):
    """a - b·trunc(a / b): the sign of a, as C's fmod."""

    __slots__ = ()
    ufunc = "fmod"

    def quotient(self, a, b):
        return self.xp.trunc(a / b)


class Fmax(Binary):
    """The larger of a and b, the non-NaN one where one is NaN."""

    __slots__ = ()
    ufunc = "fmax"

    def first_wins(self, a, b):
        return (a >= b) | self.xp.isnan(b)

    def derivatives(self, g, a, b, need_a, need_b):
        first = self.xp.asarray(self.first_wins(data_of(a), data_of(b)))
        return (Where.apply(g, 0.0, cond=first) if need_a else None,
                Where.apply(0.0, g, cond=first) if need_b else None)


class Fmin(Fmax):
    """The smaller of a and b, the non-NaN one where one is NaN."""

    __slots__ = ()
    ufunc = "fmin"

    def first_wins(self, a, b):
        return (a <= b) | self.xp.isnan(b)


class NanToNum(Function):
    """NaN and ±inf replaced by finite numbers; the gradient passes where x is finite, else 0."""

    __slots__ = ()
    save_inputs = True
    array_backward = True

    def forward(self, a, nan, posinf, neginf):
        return self.device.xp.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        x = self.inputs[0]
        return link_zero(select(g, self.xp.isfinite(x.data), g, 0.0, self.xp), x)


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of x (NaN stays NaN); zero gradient."""
    return Sign.apply(x)


def floor(x: Tensor) -> Tensor:
    """The largest integer <= x; zero gradient."""
    return Floor.apply(x)


def ceil(x: Tensor) -> Tensor:
    """The smallest integer >= x; zero gradient."""
    return Ceil.apply(x)


def round(x: Tensor, decimals: int = 0) -> Tensor:  # noqa: A001 - NumPy's name
    """Round half to even to ``decimals`` places (NumPy's ``round``); zero gradient."""
    if not isinstance(decimals, numbers.Integral):
        raise TypeError(f"round: decimals must be an integer, got {decimals!r}")
    return Round.apply(x, decimals=int(decimals))


def rint(x: Tensor) -> Tensor:
    """Round half to even to an integer; zero gradient."""
    return Rint.apply(x)


def trunc(x: Tensor) -> Tensor:
    """x rounded toward zero; zero gradient."""
    return Trunc.apply(x)


def mod(x1, x2) -> Tensor:
    """x1 - x2·floor(x1/x2), with the sign of x2 (``%``; NumPy's remainder, PyTorch's remainder)."""
    return apply_binary(Mod, x1, x2)


remainder = mod


def floor_divide(x1, x2) -> Tensor:
    """floor(x1 / x2) (``//``), as NumPy's ``floor_divide`` and PyTorch's; integers stay integers
    (x // 0 raises ZeroDivisionError for integers, as Python and PyTorch; ±inf or NaN for
    floats); zero gradient."""
    return apply_binary(FloorDivide, x1, x2)


def fmod(x1, x2) -> Tensor:
    """x1 - x2·trunc(x1/x2), with the sign of x1 (C's fmod)."""
    return apply_binary(Fmod, x1, x2)


def fmax(x1, x2) -> Tensor:
    """Elementwise maximum that ignores NaN (NaN only where both are NaN)."""
    return apply_binary(Fmax, x1, x2)


def fmin(x1, x2) -> Tensor:
    """Elementwise minimum that ignores NaN (NaN only where both are NaN)."""
    return apply_binary(Fmin, x1, x2)


def fabs(x: Tensor) -> Tensor:
    """|x| as a floating-point tensor, as NumPy's fabs (integers and bools become floats)."""
    if x.dtype.kind not in "fc":  # NumPy's own choice of float for each integer width
        x = cast(x, np.fabs(np.zeros(0, dtype=x.dtype)).dtype)
    return _abs(x)


def nan_to_num(x: Tensor, copy: bool = True, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN -> ``nan``, inf -> ``posinf``, -inf -> ``neginf`` (default: the dtype's largest finite
    values), as NumPy's; ``copy`` is accepted for NumPy's signature (the result is always new)."""
    return NanToNum.apply(x, nan=nan, posinf=posinf, neginf=neginf)
