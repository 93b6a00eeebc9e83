"""The base of NumPy's elementwise functions (ufuncs) as ops: forward calls the ufunc of the
device's array module, backward multiplies the gradient by a derivative written with Tensor ops
(so the same formula gives every order).
"""

from __future__ import annotations

from devgrad.core import Function, Tensor
from devgrad.ops._util import operand, sum_to
from devgrad.ops.elementwise import BroadcastBinary, link_zero


class Unary(Function):
    """``xp.<ufunc>(x)``; the gradient is g·``derivative(x, y)``, with x the input and y the
    output as Tensors (a subclass saves only the one its derivative reads)."""

    __slots__ = ()
    ufunc = ""
    save_inputs = True

    def forward(self, a):
        return getattr(self.device.xp, self.ufunc)(a)

    def backward(self, g):
        x = self.inputs[0] if self.save_inputs else None
        y = self.output() if self.save_output else None
        return g * self.derivative(x, y)

    def derivative(self, x, y):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement derivative")


class Scaled(Function):
    """A ufunc that is a constant multiple of its input (``deg2rad``, ``rad2deg``)."""

    __slots__ = ()
    ufunc = ""
    factor = 1.0
    array_backward = True

    def forward(self, a):
        return getattr(self.device.xp, self.ufunc)(a)

    def backward(self, g):
        return g * self.factor


class Flat(Function):
    """A ufunc that is piecewise constant (``floor``, ``sign``, ...): its gradient is zero
    everywhere, as in PyTorch (also where it jumps), and zero again at every higher order."""

    __slots__ = ()
    ufunc = ""
    save_inputs = True

    def forward(self, a, **params):
        return getattr(self.device.xp, self.ufunc)(a, **params)

    def backward(self, g):
        x = self.inputs[0]
        return link_zero(self.const(self.xp.zeros(x.shape, dtype=x.dtype)), x)


class Binary(BroadcastBinary):
    """``xp.<ufunc>(a, b)`` with broadcasting; the gradients, from ``derivatives``, are summed
    back to each input's shape. ``a`` or ``b`` may be a Python scalar."""

    __slots__ = ()
    ufunc = ""
    save_inputs = True

    def forward(self, a, b):
        self._shapes(a, b)
        return getattr(self.device.xp, self.ufunc)(a, b)

    def backward(self, g):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        da, db = self.derivatives(g, a, b, need_a, need_b)
        return (link_zero(sum_to(da, self.a_shape), a) if need_a else None,
                link_zero(sum_to(db, self.b_shape), b) if need_b else None)

    def derivatives(self, g, a, b, need_a: bool, need_b: bool):  # pragma: no cover - abstract
        """The gradients of a and b before summing to their shapes (None where not needed)."""
        raise NotImplementedError(f"{type(self).__name__} must implement derivatives")


def apply_binary(cls, a, b) -> Tensor:
    """``cls`` applied to a and b, either of which may be a scalar, list or array."""
    if isinstance(a, Tensor):
        return cls.apply(a, operand(b, a, cls.ufunc))
    if not isinstance(b, Tensor):
        raise TypeError(f"{cls.ufunc}: needs at least one Tensor argument")
    return cls.apply(operand(a, b, cls.ufunc), b)
