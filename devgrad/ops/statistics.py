"""NumPy's statistics over axes: amax, amin, nansum, nanmean, average and median."""

from __future__ import annotations

import numbers

from devgrad.core import Function, Tensor
from devgrad.ops._util import axis_arg, keepdims_arg, keepdims_shape, normalize_axis, one_axis, operand
from devgrad.ops.elementwise import Where, link_zero, select
from devgrad.ops.reduce import Max, Min
from devgrad.ops.reduce import mean
from devgrad.ops.reduce import sum as _sum
from devgrad.ops.shape import reshape, transpose


def amax(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Maximum over ``axis`` (values only, as ``numpy.amax``/``torch.amax``); tied maxima share the
    gradient evenly, as in ``torch.amax``."""
    return Max.apply(a, axis=axis_arg(axis, dim, "amax"), keepdims=keepdims_arg(keepdims, keepdim))


def amin(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Minimum over ``axis`` (values only); tied minima share the gradient evenly (``torch.amin``)."""
    return Min.apply(a, axis=axis_arg(axis, dim, "amin"), keepdims=keepdims_arg(keepdims, keepdim))


def _without_nan(a: Tensor):
    """``a`` with NaN replaced by 0 (their gradient is 0, selected) and the mask of NaN."""
    nan = a.xp.isnan(a.data)
    return Where.apply(0.0, a, cond=nan), nan


def nansum(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Sum over ``axis`` treating NaN as 0 (``numpy.nansum``); NaN elements get gradient 0."""
    # an integer or bool tensor holds no NaN, and replacing them with 0.0 would make its sum float
    clean = _without_nan(a)[0] if a.dtype.kind in "fc" else a
    return _sum(clean, axis=axis_arg(axis, dim, "nansum"), keepdims=keepdims_arg(keepdims, keepdim))


def nanmean(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Mean over ``axis`` of the elements that are not NaN (``numpy.nanmean``); NaN where a slice has
    none (silently, as ``torch.nanmean``)."""
    axis = axis_arg(axis, dim, "nanmean")
    keepdims = keepdims_arg(keepdims, keepdim)
    if a.dtype.kind not in "fc":  # no NaN to skip (and a count in a bool's dtype would be True, not n)
        return mean(a, axis=normalize_axis(axis, a.ndim), keepdims=keepdims)
    clean, nan = _without_nan(a)
    axes = normalize_axis(axis, a.ndim)
    count = a.xp.sum(~nan, axis=axes, keepdims=keepdims).astype(a.dtype)
    return _sum(clean, axis=axes, keepdims=keepdims) / Tensor._make(count, a.device)


def average(a: Tensor, axis=None, weights=None, returned: bool = False, *, keepdims: bool = False):
    """Weighted mean over ``axis`` (``numpy.average``), differentiable in ``a`` and ``weights``;
    with ``returned=True`` also the sum of the weights. Weights that sum to 0 are an error."""
    axes = normalize_axis(axis, a.ndim)
    if weights is None:
        count = 1
        for ax in axes:
            count *= a.shape[ax]
        avg = _sum(a, axis=axes, keepdims=keepdims) * (1.0 / count if count else float("nan"))
        if not returned:
            return avg
        return avg, Tensor._make(a.xp.full(avg.shape, count, dtype=avg.dtype), a.device)
    w = operand(weights, a, "average")
    if not isinstance(w, Tensor):
        w = Tensor._make(a.xp.asarray(w, dtype=a.dtype), a.device)
    w = _weights_like(w, a, axis, axes)
    total = _sum(w.broadcast_to(a.shape) if w.shape != a.shape else w, axis=axes, keepdims=keepdims)
    if bool((total.data == 0).any()):
        raise ZeroDivisionError("average: the weights sum to zero along the axis, so they cannot be normalized")
    avg = _sum(a * w, axis=axes, keepdims=keepdims) / total
    return (avg, total) if returned else avg


def _weights_like(w: Tensor, a: Tensor, axis, axes: tuple) -> Tensor:
    """Weights shaped to broadcast against ``a`` (NumPy: the full shape, or the reduced axes' shape)."""
    if w.shape == a.shape:
        return w
    if axis is None:
        raise TypeError(f"average: weights of shape {w.shape} differ from a's shape {a.shape}; give the axis "
                        "they run along")
    order = [one_axis(ax, a.ndim, "average") for ax in ((axis,) if isinstance(axis, numbers.Integral) else axis)]
    expected = tuple(a.shape[ax] for ax in order)
    if w.shape != expected:
        raise ValueError(f"average: weights of shape {w.shape} fit neither a's shape {a.shape} nor the shape "
                         f"{expected} of axis {axis}")
    if order != sorted(order):
        w = transpose(w, [order.index(ax) for ax in sorted(order)])
    return reshape(w, tuple(a.shape[i] if i in axes else 1 for i in range(a.ndim)))


class SplitAmongTies(Function):
    """``value``, one per row of ``a`` (along its last axis) and equal to elements of that row; its
    gradient is split evenly among the elements equal to it (NaN: among the NaN ones), PyTorch's
    rule for ``torch.median()`` and ``torch.amax``, selected rather than multiplied by a mask."""

    __slots__ = ("mask", "count")
    save_inputs = True
    array_backward = True

    def forward(self, a, value):
        xp = self.device.xp
        v = value[..., None]
        self.mask = (a == v) | (xp.isnan(a) & xp.isnan(v))
        self.count = xp.sum(self.mask, axis=-1, keepdims=True).astype(a.dtype)
        return value

    def backward(self, g):
        count = self.constant(g, self.count)
        share = g.reshape(*g.shape, 1) / count
        return link_zero(select(g, self.mask, share, 0.0, self.device.xp), self.inputs[0])


def median(a: Tensor, axis=None, out=None, overwrite_input: bool = False, keepdims: bool = False) -> Tensor:
    """Median over ``axis`` (None: all; an int or a tuple) as ``numpy.median``: the mean of the two
    middle values for an even count, NaN for a slice holding NaN.

    Gradient: each middle value's share (all of it for an odd count, half for an even one) is
    split evenly among the elements equal to it, as ``torch.median()`` does at ties (and among
    the NaN elements of a slice holding NaN).
    """
    if out is not None:
        raise TypeError("median: out= is not supported (tensors are not written in place)")
    if a.dtype.kind not in "fc":  # NumPy's median of integers is float64, as its mean
        a = a.astype("float64")
    axes = normalize_axis(axis, a.ndim)
    rest = [i for i in range(a.ndim) if i not in axes]
    moved = transpose(a, [*rest, *axes]) if a.ndim and axes != tuple(range(len(rest), a.ndim)) else a
    rows = reshape(moved, (*[a.shape[i] for i in rest], -1))
    n = rows.shape[-1]
    if n == 0 and axis is None and not keepdims:  # PyTorch: the median of nothing is NaN
        return _sum(rows) * float("nan")
    if n == 0:
        raise ValueError(f"median: axis {axis} is empty, so its median has no value (as in PyTorch)")
    xp = a.xp
    if a.dtype.kind not in "fc":  # NumPy's median of integers is float64, for odd counts too
        rows = rows.astype("float64")
    ordered = xp.sort(rows.data, axis=-1)
    has_nan = xp.isnan(ordered[..., -1])  # NaN sorts last
    low = xp.where(has_nan, ordered[..., -1], ordered[..., (n - 1) // 2])
    value = SplitAmongTies.apply(rows, low)
    if n % 2 == 0:
        high = xp.where(has_nan, ordered[..., -1], ordered[..., n // 2])
        value = (value + SplitAmongTies.apply(rows, high)) * 0.5
    shape = keepdims_shape(a.shape, axes) if keepdims else tuple(a.shape[i] for i in rest)
    return reshape(value, shape)
