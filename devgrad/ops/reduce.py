"""Reductions over axes: sum, mean, max, min, logsumexp (NumPy's axis/keepdims)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from devgrad.core import Function, Tensor
from devgrad.ops._util import axis_arg, keepdims_arg, keepdims_shape, normalize_axis


class MinMax(tuple):
    """``(values, indices)`` of ``max``/``min`` with ``dim=`` (PyTorch's named tuple)."""

    __slots__ = ()

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


class _Reduce(Function):
    __slots__ = ("in_shape", "axes", "keepdims")

    def _setup(self, a, axis, keepdims):
        self.in_shape = a.shape
        self.axes = normalize_axis(axis, a.ndim)
        self.keepdims = keepdims
        return self.axes

    def _expand(self, g):
        """The output-shaped gradient reshaped to keepdims form (so it broadcasts)."""
        if self.keepdims:
            return g
        return g.reshape(keepdims_shape(self.in_shape, self.axes))

    def _spread(self, g):
        """The output-shaped gradient spread over the input's shape: the broadcast op on a Tensor,
        a freshly filled array on the first-order path (cheaper than broadcast + copy)."""
        g = self._expand(g)
        if isinstance(g, Tensor):
            return g.broadcast_to(self.in_shape)
        return _filled(self.device.xp, self.in_shape, g)


def _filled(xp, shape, values):
    """A new array of ``shape`` holding ``values`` broadcast (cheaper than broadcast_to + copy)."""
    out = xp.empty(shape, dtype=values.dtype)
    out[...] = values
    return out


class Sum(_Reduce):
    __slots__ = ()
    array_backward = True

    def forward(self, a, axis=None, keepdims=False):
        axes = self._setup(a, axis, keepdims)
        return self.device.xp.sum(a, axis=axes, keepdims=keepdims)

    def backward(self, g):
        return self._spread(g)


class Mean(_Reduce):
    __slots__ = ("count",)
    array_backward = True

    def forward(self, a, axis=None, keepdims=False):
        axes = self._setup(a, axis, keepdims)
        count = 1
        for ax in axes:
            count *= a.shape[ax]
        self.count = count
        # sum × (1/n): a ufunc reduction, cheaper than xp.mean's Python wrapper; dtype is kept.
        return a.sum(axis=axes, keepdims=keepdims) * (1.0 / count if count else float("nan"))

    def backward(self, g):
        return self._spread(g * (1.0 / (self.count or 1)))


class Max(_Reduce):
    """Maximum over axes; tied maxima share the gradient evenly (like ``torch.amax``)."""

    __slots__ = ()
    save_inputs = True
    save_output = True
    array_backward = True
    pick = "max"

    def forward(self, a, axis=None, keepdims=False):
        axes = self._setup(a, axis, keepdims)
        if a.size == 0:
            raise ValueError(f"{self.pick}() of an empty tensor has no value")
        return getattr(self.device.xp, self.pick)(a, axis=axes, keepdims=keepdims)

    def backward(self, g):
        xp = self.device.xp
        x = self.inputs[0].data
        kshape = keepdims_shape(self.in_shape, self.axes)
        winners = (x == self.out_data.reshape(kshape)).astype(g.dtype)
        winners /= xp.sum(winners, axis=self.axes, keepdims=True)
        return self._expand(g) * self.constant(g, winners)


class Min(Max):
    __slots__ = ()
    pick = "min"


class LogSumExp(_Reduce):
    """log(sum(exp(a))) over axes, computed with the max shifted out (no overflow)."""

    __slots__ = ()
    save_inputs = True
    save_output = True

    def forward(self, a, axis=None, keepdims=False):
        xp = self.device.xp
        axes = self._setup(a, axis, keepdims)
        m = xp.max(a, axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        with np.errstate(divide="ignore"):  # an all -inf slice: log 0 = -inf, the right value, silently
            out = xp.log(xp.sum(xp.exp(a - m), axis=axes, keepdims=True)) + m
        return out if keepdims else out.reshape([s for i, s in enumerate(out.shape) if i not in axes])

    def backward(self, g):
        out = self._expand(self.output())
        return self._expand(g) * (self.inputs[0] - out).exp()


def sum(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001 - NumPy's name
    """Sum over ``axis`` (None: all axes; int or tuple of ints). (``dim``/``keepdim``: PyTorch's names.)"""
    return Sum.apply(a, axis=axis_arg(axis, dim, "sum"), keepdims=keepdims_arg(keepdims, keepdim))


def mean(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Arithmetic mean over ``axis``. (``dim``/``keepdim``: PyTorch's names.)"""
    return Mean.apply(a, axis=axis_arg(axis, dim, "mean"), keepdims=keepdims_arg(keepdims, keepdim))


def max(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):  # noqa: A001
    """Maximum over ``axis`` (NumPy: the values). With PyTorch's ``dim=`` it returns
    ``(values, indices)`` as PyTorch does."""
    return _extreme(Max, "argmax", a, axis, keepdims, dim, keepdim)


def min(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):  # noqa: A001
    """Minimum over ``axis`` (NumPy: the values). With PyTorch's ``dim=`` it returns
    ``(values, indices)`` as PyTorch does."""
    return _extreme(Min, "argmin", a, axis, keepdims, dim, keepdim)


def _extreme(cls, arg: str, a: Tensor, axis, keepdims, dim, keepdim):
    keep = keepdims_arg(keepdims, keepdim)
    values = cls.apply(a, axis=axis_arg(axis, dim, cls.pick), keepdims=keep)
    if dim is None:
        return values
    indices = Tensor._make(getattr(a.xp, arg)(a.data, axis=dim, keepdims=keep), a.device)
    return MinMax(values, indices)


def logsumexp(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """log(sum(exp(a), axis)), stable for large |a|. (``dim``/``keepdim``: PyTorch's names.)"""
    return LogSumExp.apply(a, axis=axis_arg(axis, dim, "logsumexp"), keepdims=keepdims_arg(keepdims, keepdim))


def var(a: Tensor, axis=None, keepdims: bool = False, ddof: int = 0, *, dim=None, keepdim=None,
        correction=None) -> Tensor:
    """Variance over ``axis`` (ddof=0: population variance, like NumPy; PyTorch's ``correction``
    is ddof)."""
    axes = normalize_axis(axis_arg(axis, dim, "var"), a.ndim)
    keepdims = keepdims_arg(keepdims, keepdim)
    ddof = ddof if correction is None else correction
    count = 1
    for ax in axes:
        count *= a.shape[ax]
    centered = a - mean(a, axis=axes, keepdims=True)
    squares = sum(centered * centered, axis=axes, keepdims=keepdims)
    if count - ddof > 0:
        return squares * (1.0 / (count - ddof))
    # No degrees of freedom left: inf (NaN where the squares are 0), as NumPy and PyTorch give,
    # with devgrad's own warning instead of a division error or a negative variance.
    warnings.warn(f"var/std: ddof={ddof} leaves no degrees of freedom for {count} element(s); the result is inf "
                  "or NaN", RuntimeWarning, stacklevel=2)
    with np.errstate(invalid="ignore"):
        return squares * math.inf


def std(a: Tensor, axis=None, keepdims: bool = False, ddof: int = 0, *, dim=None, keepdim=None,
        correction=None) -> Tensor:
    """Standard deviation over ``axis``."""
    return StdRoot.apply(var(a, axis=axis, keepdims=keepdims, ddof=ddof, dim=dim, keepdim=keepdim,
                             correction=correction))


class StdRoot(Function):
    """The square root that turns a variance into a standard deviation. Its gradient is 0 where the
    deviation is 0 (every element equal), PyTorch's convention for std, instead of inf·0 = NaN;
    the mask is a constant added to the denominator, so no inf is formed."""

    __slots__ = ()
    save_output = True
    array_backward = True

    def forward(self, v):
        return self.device.xp.sqrt(v)

    def backward(self, g):
        zero = (self.out_data == 0).astype(self.out_data.dtype)
        return g * self.constant(g, 1.0 - zero) / ((self.result(g) + self.constant(g, zero)) * 2.0)
