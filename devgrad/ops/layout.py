"""NumPy's layout functions: flip, rot90, roll, moveaxis, rollaxis, ravel, atleast_Nd, repeat,
tile, take, take_along_axis, pad, append.

Each is written with the differentiable shape ops (indexing, transpose, reshape, broadcast,
concatenate), so its gradient, and the gradient's gradient, come from theirs: an element that
appears several times in the result (repeat, tile, edge and reflect padding, take) sums the
gradients of its copies.
"""

from __future__ import annotations

import numbers

import numpy as np

from devgrad.core import Function, Tensor
from devgrad.ops._util import axis_arg, index_array, normalize_axis, one_axis, operand
from devgrad.ops.shape import concatenate, getitem, reshape, transpose
from devgrad.ops.torch_methods import tile as tile_method

PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def ravel(a: Tensor) -> Tensor:
    """The elements as a 1-D tensor, in C order."""
    return reshape(a, -1)


def flip(m: Tensor, axis=None, *, dims=None) -> Tensor:
    """Reverse the order of elements along ``axis`` (every axis for None; PyTorch: ``dims``)."""
    axis = axis_arg(axis, dims, "flip")
    axes = normalize_axis(axis, m.ndim)
    if not axes:
        return m
    return getitem(m, tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(m.ndim)))


def flipud(m: Tensor) -> Tensor:
    """Reverse the rows (axis 0)."""
    if m.ndim < 1:
        raise ValueError("flipud: the tensor must have at least 1 dimension")
    return flip(m, 0)


def fliplr(m: Tensor) -> Tensor:
    """Reverse the columns (axis 1)."""
    if m.ndim < 2:
        raise ValueError(f"fliplr: the tensor must have at least 2 dimensions, this one has {m.ndim}")
    return flip(m, 1)


def rot90(m: Tensor, k: int = 1, axes=(0, 1), *, dims=None) -> Tensor:
    """Rotate by 90° ``k`` times in the plane of ``axes``, from the first axis toward the second
    (NumPy's; PyTorch: ``dims``)."""
    axes = tuple(axes if dims is None else dims)
    if len(axes) != 2:
        raise ValueError(f"rot90: axes must name 2 axes, got {axes}")
    if not all(-m.ndim <= ax < m.ndim for ax in axes):
        raise ValueError(f"rot90: axes {axes} are out of range for a tensor of {m.ndim} dimensions")
    first, second = axes[0] % m.ndim, axes[1] % m.ndim
    if first == second:
        raise ValueError(f"rot90: axes {axes} name the same axis twice")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, first), second)
    order = list(range(m.ndim))
    order[first], order[second] = order[second], order[first]
    if k == 1:
        return transpose(flip(m, second), order)
    return flip(transpose(m, order), second)


def roll(a: Tensor, shift=None, axis=None, *, shifts=None, dims=None) -> Tensor:
    """Shift elements cyclically by ``shift`` along ``axis`` (of the flattened tensor for None);
    PyTorch's ``shifts``/``dims`` are accepted too."""
    if (shift is None) == (shifts is None):
        raise TypeError("roll: give the shift once, as shift (NumPy's) or shifts= (PyTorch's)")
    shift = shift if shifts is None else shifts
    axis = axis_arg(axis, dims, "roll")
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), a.shape)
    shift_list = np.broadcast_to(np.asarray(shift), np.broadcast(np.asarray(shift), np.asarray(axis)).shape)
    axis_list = np.broadcast_to(np.asarray(axis), shift_list.shape)
    totals = [0] * a.ndim
    for s, ax in zip(shift_list.reshape(-1), axis_list.reshape(-1)):
        totals[one_axis(int(ax), a.ndim, "roll")] += int(s)
    out = a
    for ax, total in enumerate(totals):
        n = a.shape[ax]
        cut = n - total % n if n else 0
        if 0 < cut < n:
            lead = (slice(None),) * ax
            out = concatenate([getitem(out, lead + (slice(cut, None),)), getitem(out, lead + (slice(None, cut),))],
                              axis=ax)
    return out


def moveaxis(a: Tensor, source, destination) -> Tensor:
    """Move axes to new positions; the others keep their order."""
    given_src = [source] if isinstance(source, numbers.Integral) else list(source)
    given_dst = [destination] if isinstance(destination, numbers.Integral) else list(destination)
    if len(given_src) != len(given_dst):
        raise ValueError(f"moveaxis: source {source} and destination {destination} must name as many axes")
    src = [one_axis(s, a.ndim, "moveaxis") for s in given_src]
    dst = [one_axis(d, a.ndim, "moveaxis") for d in given_dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis: repeated axis in source {source} or destination {destination}")
    order = [i for i in range(a.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, tuple(order)) if order != list(range(a.ndim)) else a


def rollaxis(a: Tensor, axis: int, start: int = 0) -> Tensor:
    """Move ``axis`` so that it comes before the axis now at ``start`` (NumPy's rollaxis)."""
    n = a.ndim
    axis = one_axis(axis, n, "rollaxis")
    start = start + n if start < 0 else start
    if not 0 <= start <= n:
        raise np.exceptions.AxisError(f"rollaxis: start must be in [{-n}, {n}], got {start}")
    if axis < start:
        start -= 1
    order = [i for i in range(n) if i != axis]
    order.insert(start, axis)
    return transpose(a, tuple(order)) if axis != start else a


def _atleast(a: Tensor, ndim: int) -> Tensor:
    if a.ndim >= ndim:
        return a
    if ndim == 3 and a.ndim == 2:
        return reshape(a, a.shape + (1,))
    if ndim == 3 and a.ndim == 1:
        return reshape(a, (1,) + a.shape + (1,))
    return reshape(a, (1,) * (ndim - a.ndim) + a.shape)


def _at_least(arys, ndim: int):
    out = tuple(_atleast(a, ndim) for a in arys)
    return out[0] if len(out) == 1 else out


def atleast_1d(*arys: Tensor):
    """Each tensor with at least 1 dimension (one tensor, or a tuple for several)."""
    return _at_least(arys, 1)


def atleast_2d(*arys: Tensor):
    """Each tensor with at least 2 dimensions: (n,) becomes (1, n)."""
    return _at_least(arys, 2)


def atleast_3d(*arys: Tensor):
    """Each tensor with at least 3 dimensions: (n,) becomes (1, n, 1), (m, n) becomes (m, n, 1)."""
    return _at_least(arys, 3)


def _index(indices, a: Tensor, op: str):
    """An index argument as an integer array on ``a``'s device (an int stays an int)."""
    if isinstance(indices, numbers.Integral) and not isinstance(indices, bool):
        return int(indices)
    return index_array(indices, a, op)


def take(a: Tensor, indices, axis=None) -> Tensor:
    """Elements at ``indices`` along ``axis`` (of the flattened tensor for None); repeated
    indices add their gradients."""
    index = _index(indices, a, "take")
    if axis is None:
        return getitem(ravel(a), index)
    return getitem(a, (slice(None),) * one_axis(axis, a.ndim, "take") + (index,))


def take_along_axis(arr: Tensor, indices, axis=-1, *, dim=None) -> Tensor:
    """Pick one element per index along ``axis``, the indices shaped like ``arr`` elsewhere
    (NumPy's take_along_axis, PyTorch's take_along_dim with ``dim``)."""
    axis = axis if dim is None else dim
    index = _index(indices, arr, "take_along_axis")
    if axis is None:
        return getitem(ravel(arr), index)
    if getattr(index, "ndim", 0) != arr.ndim:
        raise ValueError(f"take_along_axis: indices have {getattr(index, 'ndim', 0)} dimensions, the tensor "
                         f"{arr.ndim}: they must have the same number")
    axis = one_axis(axis, arr.ndim, "take_along_axis")
    xp = arr.xp
    parts = tuple(index if i == axis else xp.arange(n).reshape((1,) * i + (n,) + (1,) * (arr.ndim - i - 1))
                  for i, n in enumerate(arr.shape))
    return getitem(arr, parts)


def tile(A: Tensor, reps) -> Tensor:
    """The whole tensor ``reps`` times along each axis (an int, or one count per axis, counted
    from the last), as NumPy's tile and PyTorch's ``x.repeat``."""
    return tile_method(A, reps)


def repeat(a: Tensor, repeats, axis=None) -> Tensor:
    """Each element ``repeats`` times (an int, or one count per element) along ``axis``, of the
    flattened tensor for None: NumPy's repeat (``x.tile`` repeats the whole tensor)."""
    if axis is None:
        a, axis = ravel(a), 0
    axis = one_axis(axis, a.ndim, "repeat")
    counts = np.asarray(repeats.numpy() if isinstance(repeats, Tensor) else repeats)
    if counts.dtype.kind not in "iu" or (counts < 0).any():
        raise ValueError(f"repeat: repeats must be non-negative integers, got {repeats!r}")
    try:
        order = np.repeat(np.arange(a.shape[axis]), counts)
    except ValueError:
        raise ValueError(f"repeat: {counts.size} counts for an axis of size {a.shape[axis]}; give one count or "
                         "one per element") from None
    return take(a, a.device.put(order), axis)


class PadConstant(Function):
    """``xp.pad(a, widths, constant_values=...)``; the gradient is the middle of g."""

    __slots__ = ("inside",)
    array_backward = True

    def forward(self, a, widths, values):
        self.inside = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, a.shape))
        return self.device.xp.pad(a, widths, mode="constant", constant_values=values)

    def backward(self, g):
        return g[self.inside]


def _pad_widths(pad_width, ndim: int) -> tuple:
    widths = np.asarray(pad_width)
    if widths.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {pad_width!r}")
    try:
        widths = np.broadcast_to(widths, (ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit a tensor of {ndim} dimensions: give one "
                         "width, a (before, after) pair, or one pair per dimension") from None
    if (widths < 0).any():
        raise ValueError(f"pad: pad_width {pad_width!r} has a negative width")
    return tuple((int(lo), int(hi)) for lo, hi in widths)


def pad(array: Tensor, pad_width, mode: str = "constant", constant_values=0) -> Tensor:
    """Pad with ``constant_values`` (a number, or (before, after) numbers per axis), or by
    repeating the edge values ('edge'), mirroring without ('reflect') or with the edge
    ('symmetric'), or wrapping around ('wrap'), as NumPy's pad."""
    widths = _pad_widths(pad_width, array.ndim)
    if array.ndim == 0:  # no axis to pad: NumPy returns a copy
        return reshape(array, ())
    if mode == "constant":
        values = np.asarray(constant_values)
        if values.dtype.kind not in "biuf":
            raise TypeError(f"pad: constant_values must be numbers, got {constant_values!r}")
        return PadConstant.apply(array, widths=widths, values=constant_values)
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode {mode!r} is not supported; use one of {', '.join(PAD_MODES)}")
    out = array
    for axis, (lo, hi) in enumerate(widths):
        if lo == hi == 0:
            continue
        if array.shape[axis] == 0:
            raise ValueError(f"pad: axis {axis} is empty, so mode {mode!r} has nothing to repeat; use 'constant'")
        order = np.pad(np.arange(array.shape[axis]), (lo, hi), mode=mode)  # type: ignore[call-overload]
        out = take(out, array.device.put(order), axis)
    return out


def append(arr: Tensor, values, axis=None) -> Tensor:
    """``values`` after ``arr`` along ``axis`` (both flattened for None); Python numbers and
    lists take ``arr``'s dtype."""
    if not isinstance(values, Tensor):  # a number, list or array: a constant of arr's dtype (dtype is stable)
        values = operand(values, arr, "append")
        data = values.data if isinstance(values, Tensor) else values
        values = Tensor._make(arr.xp.asarray(data, dtype=arr.dtype), arr.device)
    if axis is None:
        return concatenate([ravel(arr), ravel(values)], axis=0)
    return concatenate([arr, values], axis=axis)


__all__ = ["append", "atleast_1d", "atleast_2d", "atleast_3d", "flip", "fliplr", "flipud", "moveaxis", "pad",
           "ravel", "repeat", "roll", "rollaxis", "rot90", "take", "take_along_axis", "tile"]
