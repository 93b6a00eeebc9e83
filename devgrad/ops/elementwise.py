"""Elementwise arithmetic: + - * /, exp, log, sqrt, abs, maximum/minimum, where, clip, cast.

Binary ops broadcast like NumPy and accept Python scalars on either side; their backward
sums the gradient back to each input's shape.
"""

from __future__ import annotations

from devgrad.backend import DeviceError
from devgrad.core import Function, Tensor, as_dtype, quiet
from devgrad.ops._util import operand, shape_of, sum_to


class BroadcastBinary(Function):
    """A binary op with NumPy broadcasting: it keeps both input shapes, for ``sum_to`` in backward."""

    __slots__ = ("a_shape", "b_shape")

    def _shapes(self, a, b):
        self.a_shape = shape_of(a)
        self.b_shape = shape_of(b)


def select(g, cond, a, b, xp):
    """``where(cond, a, b)`` in ``g``'s kind: the Where op on Tensors, ``xp.where`` on arrays.

    Gradients are masked by selecting, never by multiplying with a 0/1 mask: an infinite
    upstream gradient where the mask is 0 gives 0 (inf·0 would be NaN), as in PyTorch.
    """
    return Function.for_kind(g, _where_op, xp.where)(cond, a, b)


def _where_op(cond, a, b) -> Tensor:
    """``where(cond, a, b)`` as the Where op (``xp.where``'s signature)."""
    return Where.apply(a, b, cond=cond)


class ZeroLink(Function):
    """``value`` unchanged, with ``source`` as a second input whose derivative is zero.

    The first derivative of relu, abs, clip, max, ... is piecewise constant in x: its own
    derivative is 0, not absent. Linking the mask's source keeps a second ``grad`` from
    raising "does not require grad" and gives zeros, as PyTorch does.
    """

    __slots__ = ("source_shape", "source_dtype")

    def forward(self, value, source):
        self.source_shape, self.source_dtype = source.shape, source.dtype
        return value

    def backward(self, g):
        zero = None
        if self.needs_input_grad[1]:
            zero = self.const(self.device.xp.zeros(self.source_shape, dtype=self.source_dtype))
        return g, zero


def link_zero(value, source):
    """``value`` (a gradient) linked to ``source`` with derivative 0 while a graph of the
    gradient is built (a Tensor ``value``); an array ``value`` as it is."""
    if isinstance(value, Tensor) and isinstance(source, Tensor) and source.requires_grad:
        return ZeroLink.apply(value, source)
    return value


class Add(BroadcastBinary):
    __slots__ = ()
    array_backward = True

    def forward(self, a, b):
        self._shapes(a, b)
        return a + b

    def backward(self, g):
        return sum_to(g, self.a_shape, self.device), sum_to(g, self.b_shape, self.device)


class Sub(BroadcastBinary):
    __slots__ = ()
    array_backward = True

    def forward(self, a, b):
        self._shapes(a, b)
        return a - b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (sum_to(g, self.a_shape, self.device) if need_a else None,
                sum_to(-g, self.b_shape, self.device) if need_b else None)


class Mul(BroadcastBinary):
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


class Div(BroadcastBinary):
    """a / b. The denominator's gradient is -g·((a/b)/b), PyTorch's formula: never b·b, which
    overflows or underflows long before a/b does (a = b = 1e-200, or 1e30/1e20 in float32)."""

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
                sum_to(-g * (a / b / b), self.b_shape) if need_b else None)


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
    """|a|. Its gradient is g·sign(a), with sign(0) = sign(NaN) = 0, PyTorch's convention
    (so an infinite g at a = 0 gives NaN, as in PyTorch)."""

    __slots__ = ()
    save_inputs = True
    array_backward = True

    def forward(self, a):
        return self.device.xp.abs(a)

    def backward(self, g):
        x = self.inputs[0]
        sign = (x.data > 0).astype(g.dtype) - (x.data < 0).astype(g.dtype)
        return link_zero(g * self.constant(g, sign), x)


class Maximum(BroadcastBinary):
    """Elementwise maximum, with PyTorch's gradient conventions: at ties it is split evenly; where
    either side is NaN the whole gradient goes to both (neither is smaller); masked by select."""

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
        a_loses, b_loses = (a_data < b_data, a_data > b_data) if self.pick == "maximum" else (
            a_data > b_data, a_data < b_data)
        xp = self.device.xp
        tie = xp.asarray(a_data == b_data)
        shared = select(g, tie, g * 0.5, g, xp)  # the output's shape: the comparisons broadcast
        need_a, need_b = self.needs_input_grad
        ga = gb = None
        if need_a:
            ga = link_zero(sum_to(select(g, xp.asarray(a_loses), 0.0, shared, xp), self.a_shape), a)
        if need_b:
            gb = link_zero(sum_to(select(g, xp.asarray(b_loses), 0.0, shared, xp), self.b_shape), b)
        return ga, gb


class Minimum(Maximum):
    __slots__ = ()
    pick = "minimum"


class Where(BroadcastBinary):
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
    """Clamp to [lo, hi]; the gradient passes where lo <= x <= hi, both bounds included, and is 0
    elsewhere and at NaN (PyTorch's convention), selected rather than multiplied by a mask. As
    PyTorch's clamp, a value equal to a bound passes as it is (-0.0 stays -0.0 at lo = 0, where
    NumPy's clip with one bound gives 0.0), and so does NaN."""

    __slots__ = ("lo", "hi")
    save_inputs = True
    array_backward = True

    def forward(self, a, lo, hi):
        self.lo, self.hi = lo, hi
        xp = self.device.xp
        out = a if lo is None else xp.where(a < lo, lo, a)
        return out if hi is None else xp.where(out > hi, hi, out)

    def backward(self, g):
        x = self.inputs[0]
        inside = self.device.xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x.data >= self.lo
        if self.hi is not None:
            inside &= x.data <= self.hi
        return link_zero(select(g, inside, g, 0.0, self.device.xp), x)


class Cast(Function):
    __slots__ = ("in_dtype",)
    array_backward = True

    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return g.astype(self.in_dtype)  # a Tensor's astype is this op again: differentiable


# -- function forms ---------------------------------------------------------------------

def binary_op(cls, a, b) -> Tensor:
    """``cls`` applied to a and b, either of which may be a scalar or array (the other a Tensor)."""
    if isinstance(a, Tensor):
        return cls.apply(a, operand(b, a, cls.__name__))
    return cls.apply(operand(a, b, cls.__name__), b)


def add(a, b) -> Tensor:
    """a + b with NumPy broadcasting."""
    return binary_op(Add, a, b)


def sub(a, b) -> Tensor:
    """a - b with NumPy broadcasting."""
    return binary_op(Sub, a, b)


def mul(a, b) -> Tensor:
    """a * b with NumPy broadcasting."""
    return binary_op(Mul, a, b)


def div(a, b) -> Tensor:
    """a / b with NumPy broadcasting."""
    return binary_op(Div, a, b)


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
    return binary_op(Maximum, a, b)


def minimum(a, b) -> Tensor:
    """Elementwise minimum of two tensors (or a tensor and a scalar)."""
    return binary_op(Minimum, a, b)


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


def clip(a: Tensor, lo=None, hi=None, *, a_min=None, a_max=None) -> Tensor:
    """Clamp values to [lo, hi] (either bound may be None; ``a_min``/``a_max`` are NumPy's names)."""
    if a_min is not None or a_max is not None:
        if lo is not None or hi is not None:
            raise TypeError("clip: give the bounds as lo, hi or as a_min=, a_max= (NumPy's names), not both")
        lo, hi = a_min, a_max
    if lo is None and hi is None:
        raise ValueError("clip: give at least one of lo, hi")
    return Clip.apply(a, lo=lo, hi=hi)


@quiet
def _convert(data, dtype):
    """``data.astype(dtype)`` outside the graph (an integer or bool type): inf and NaN convert
    silently, as in an op's forward (to the integer NumPy gives)."""
    return data.astype(dtype)


def cast(a: Tensor, dtype) -> Tensor:
    """Convert to ``dtype``; differentiable between floating types."""
    dt = as_dtype(dtype)
    if dt is None:
        raise TypeError("astype: dtype is None; give the dtype to convert to, e.g. 'float32' or np.float64")
    if a.dtype == dt:
        return a
    if dt.kind not in "fc":
        return Tensor._make(_convert(a.data, dt), a.device)
    return Cast.apply(a, dtype=dt)
