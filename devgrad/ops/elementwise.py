"""Elementwise arithmetic: + - * / **, exp, log, sqrt, abs, maximum/minimum, where, clip, cast.

Binary ops broadcast like NumPy and accept Python scalars on either side; their backward
sums the gradient back to each input's shape.
"""

from __future__ import annotations

import math

from devgrad.core import Function
from devgrad.backend import DeviceError
from devgrad.ops._util import operand, shape_of, sum_to
from devgrad.core import Tensor, as_dtype


class _Binary(Function):
    __slots__ = ("a_shape", "b_shape")

    def _shapes(self, a, b):
        self.a_shape = shape_of(a)
        self.b_shape = shape_of(b)


class Add(_Binary):
    __slots__ = ()
    array_backward = True

    def forward(self, a, b):
        self._shapes(a, b)
        return a + b

    def backward(self, g):
        return sum_to(g, self.a_shape, self.device), sum_to(g, self.b_shape, self.device)


class Sub(_Binary):
    __slots__ = ()
    array_backward = True

    def forward(self, a, b):
        self._shapes(a, b)
        return a - b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (sum_to(g, self.a_shape, self.device) if need_a else None,
                sum_to(-g, self.b_shape, self.device) if need_b else None)


class Mul(_Binary):
    __slots__ = ()
    save_inputs = True
    array_backward = True

    def forward(self, a, b):
        self._shapes(a, b)
        return a * b

    def backward(self, g):
        a, b = self.operands(g)
        need_a, need_b = self.needs_input_grad
        return (sum_to(g * b, self.a_shape) if need_a else None,
                sum_to(g * a, self.b_shape) if need_b else None)


class Div(_Binary):
    __slots__ = ()
    save_inputs = True
    array_backward = True

    def forward(self, a, b):
        self._shapes(a, b)
        return a / b

    def backward(self, g):
        a, b = self.operands(g)
        need_a, need_b = self.needs_input_grad
        return (sum_to(g / b, self.a_shape) if need_a else None,
                sum_to(-g * a / (b * b), self.b_shape) if need_b else None)


class Pow(_Binary):
    __slots__ = ()
    save_inputs = True
    save_output = True

    def forward(self, a, b):
        self._shapes(a, b)
        return a**b

    def backward(self, g):
        # PyTorch's conventions at the edges: d(x**0)/dx = 0 (also at x = 0, where x**-1 is inf), and
        # d(0**e)/de = 0 for e >= 0 (where log 0 is -inf). The masks are constants added where they
        # apply, so no inf or NaN is ever formed, and the formula stays differentiable elsewhere.
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        ga = gb = None
        if need_a:
            if isinstance(b, Tensor):
                zero_exponent = self.const((b.data == 0).astype(b.dtype))
                ga = sum_to(g * b * a ** (b - 1 + zero_exponent), self.a_shape)
            elif b == 0:
                ga = g * 0.0
            elif b == 2:
                ga = g * (a * 2.0)
            else:
                ga = g * (a ** (b - 1) * b)
        if need_b:
            if isinstance(a, Tensor):
                at_zero = (a.data == 0).astype(a.dtype)
                log_a = log(a + self.const(at_zero)) * self.const(1.0 - at_zero)
            else:
                log_a = math.log(a) if a > 0 else (0.0 if a == 0 else math.nan)
            gb = sum_to(g * self.output() * log_a, self.b_shape)
        return ga, gb


class Neg(Function):
    __slots__ = ()
    array_backward = True

    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Exp(Function):
    __slots__ = ()
    save_output = True
    array_backward = True

    def forward(self, a):
        return self.device.xp.exp(a)

    def backward(self, g):
        return g * self.result(g)


class Log(Function):
    __slots__ = ()
    save_inputs = True
    array_backward = True

    def forward(self, a):
        return self.device.xp.log(a)

    def backward(self, g):
        return g / self.operands(g)[0]


class Sqrt(Function):
    __slots__ = ()
    save_output = True
    array_backward = True

    def forward(self, a):
        return self.device.xp.sqrt(a)

    def backward(self, g):
        return g / (self.result(g) * 2.0)


class Abs(Function):
    __slots__ = ()
    save_inputs = True
    array_backward = True

    def forward(self, a):
        return self.device.xp.abs(a)

    def backward(self, g):
        x = self.inputs[0]
        return g * self.constant(g, self.device.xp.sign(x.data))


class Maximum(_Binary):
    """Elementwise maximum; at ties the gradient is split evenly (as PyTorch does)."""

    __slots__ = ()
    save_inputs = True
    array_backward = True
    pick = "maximum"

    def forward(self, a, b):
        self._shapes(a, b)
        return getattr(self.device.xp, self.pick)(a, b)

    def backward(self, g):
        a, b = self.inputs
        a_data = a.data if isinstance(a, Tensor) else a
        b_data = b.data if isinstance(b, Tensor) else b
        wins = (a_data > b_data) if self.pick == "maximum" else (a_data < b_data)
        share = wins.astype(g.dtype) + (a_data == b_data).astype(g.dtype) * 0.5
        share_t = self.constant(g, share)  # already the output's shape: the comparison broadcast it
        need_a, need_b = self.needs_input_grad
        return (sum_to(g * share_t, self.a_shape) if need_a else None,
                sum_to(g * (1.0 - share_t), self.b_shape) if need_b else None)


class Minimum(Maximum):
    __slots__ = ()
    pick = "minimum"


class Where(_Binary):
    __slots__ = ("cond",)

    def forward(self, a, b, cond):
        self._shapes(a, b)
        self.cond = cond
        return self.device.xp.where(cond, a, b)

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (sum_to(Where.apply(g, 0.0, cond=self.cond), self.a_shape) if need_a else None,
                sum_to(Where.apply(0.0, g, cond=self.cond), self.b_shape) if need_b else None)


class Clip(Function):
    """Clamp to [lo, hi]; the gradient passes where lo <= x <= hi (PyTorch's convention)."""

    __slots__ = ("lo", "hi")
    save_inputs = True
    array_backward = True

    def forward(self, a, lo, hi):
        self.lo, self.hi = lo, hi
        return self.device.xp.clip(a, lo, hi)

    def backward(self, g):
        x = self.inputs[0].data
        inside = self.device.xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        return g * self.constant(g, inside.astype(g.dtype))


class Cast(Function):
    __slots__ = ("in_dtype",)
    array_backward = True

    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return g.astype(self.in_dtype)  # a Tensor's astype is this op again: differentiable


# -- function forms ---------------------------------------------------------------------

def _binary(cls, a, b):
    if isinstance(a, Tensor):
        return cls.apply(a, operand(b, a, cls.__name__))
    return cls.apply(operand(a, b, cls.__name__), b)


def add(a, b) -> Tensor:
    """a + b with NumPy broadcasting."""
    return _binary(Add, a, b)


def sub(a, b) -> Tensor:
    """a - b with NumPy broadcasting."""
    return _binary(Sub, a, b)


def mul(a, b) -> Tensor:
    """a * b with NumPy broadcasting."""
    return _binary(Mul, a, b)


def div(a, b) -> Tensor:
    """a / b with NumPy broadcasting."""
    return _binary(Div, a, b)


def pow(a, b) -> Tensor:  # noqa: A001 - mirrors the operator's name
    """a ** b; either side may be a scalar."""
    return _binary(Pow, a, b)


def neg(a: Tensor) -> Tensor:
    return Neg.apply(a)


def exp(a: Tensor) -> Tensor:
    """e ** a."""
    return Exp.apply(a)


def log(a: Tensor) -> Tensor:
    """Natural logarithm."""
    return Log.apply(a)


def sqrt(a: Tensor) -> Tensor:
    return Sqrt.apply(a)


def abs(a: Tensor) -> Tensor:  # noqa: A001
    """|a|; the gradient at 0 is 0 (sign(0))."""
    return Abs.apply(a)


def maximum(a, b) -> Tensor:
    """Elementwise maximum of two tensors (or a tensor and a scalar)."""
    return _binary(Maximum, a, b)


def minimum(a, b) -> Tensor:
    """Elementwise minimum of two tensors (or a tensor and a scalar)."""
    return _binary(Minimum, a, b)


def where(cond, a, b) -> Tensor:
    """Pick from ``a`` where ``cond`` is true, else from ``b`` (cond is not differentiated)."""
    tensors = [t for t in (cond, a, b) if isinstance(t, Tensor)]
    if not tensors:
        raise TypeError("where: needs at least one Tensor argument")
    like = tensors[0]
    for t in tensors[1:]:
        if t.device is not like.device:
            raise DeviceError(f"Where: arguments are on different devices, {like.device} and {t.device}")
    cond = operand(cond, like, "Where")
    cond_data = cond.data if isinstance(cond, Tensor) else cond
    cond_data = cond_data.astype(bool, copy=False) if hasattr(cond_data, "astype") else bool(cond_data)
    a = operand(a, like, "Where")
    b = operand(b, like, "Where")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = Tensor._make(like.device.xp.asarray(a), like.device)
    return Where.apply(a, b, cond=cond_data)


def clip(a: Tensor, lo=None, hi=None) -> Tensor:
    """Clamp values to [lo, hi] (either bound may be None)."""
    if lo is None and hi is None:
        raise ValueError("clip: give at least one of lo, hi")
    return Clip.apply(a, lo=lo, hi=hi)


def cast(a: Tensor, dtype) -> Tensor:
    """Convert to ``dtype``; differentiable between floating types."""
    dt = as_dtype(dtype)
    if a.dtype == dt:
        return a
    if dt.kind not in "fc":
        return Tensor._make(a.data.astype(dt), a.device)
    return Cast.apply(a, dtype=dt)
