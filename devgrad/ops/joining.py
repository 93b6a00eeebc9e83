"""NumPy's ways to cut tensors apart and put them together: split, array_split, hsplit, vsplit,
dsplit, hstack, vstack, column_stack, dstack, select, nonzero, array of tensors, and linspace
between tensor endpoints. All are differentiable through indexing, concatenate, stack and where.
"""

from __future__ import annotations

import itertools
import numbers

import numpy as np

from devgrad.backend import DeviceError, default_device
from devgrad.backend import device as resolve_device
from devgrad.core import DEFAULT_FLOAT, Tensor, as_dtype
from devgrad.creation import linspace as constant_linspace
from devgrad.ops._util import one_axis
from devgrad.ops.elementwise import cast
from devgrad.ops.elementwise import where as where3
from devgrad.ops.layout import atleast_1d, atleast_2d, atleast_3d, moveaxis
from devgrad.ops.shape import broadcast_to, concatenate, getitem, reshape, stack


def array_split(ary: Tensor, indices_or_sections, axis: int = 0) -> list:
    """Cut into ``n`` nearly equal pieces (the first ones one longer), or at the given indices."""
    axis = one_axis(axis, ary.ndim, "array_split")
    total = ary.shape[axis]
    if isinstance(indices_or_sections, numbers.Integral):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError(f"array_split: the number of sections must be positive, got {sections}")
        each, extras = divmod(total, sections)
        bounds = np.cumsum([0] + extras * [each + 1] + (sections - extras) * [each]).tolist()
    else:
        bounds = [0, *(int(i) for i in indices_or_sections), total]
    lead = (slice(None),) * axis
    return [getitem(ary, lead + (slice(lo, hi),)) for lo, hi in itertools.pairwise(bounds)]


def split(ary: Tensor, indices_or_sections, axis: int = 0) -> list:
    """Cut into ``n`` equal pieces (an error when the axis does not divide), or at the given
    indices: NumPy's split (``x.split(size, dim=...)`` is PyTorch's)."""
    if isinstance(indices_or_sections, numbers.Integral):
        n = ary.shape[one_axis(axis, ary.ndim, "split")]
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError(f"split: axis {axis} of size {n} does not divide into {indices_or_sections} equal "
                             "pieces; use dg.array_split for nearly equal ones")
    return array_split(ary, indices_or_sections, axis)


def hsplit(ary: Tensor, indices_or_sections) -> list:
    """split along axis 1 (axis 0 for a 1-D tensor)."""
    if ary.ndim == 0:
        raise ValueError("hsplit: a 0-d tensor has no axis to split")
    return split(ary, indices_or_sections, 1 if ary.ndim > 1 else 0)


def vsplit(ary: Tensor, indices_or_sections) -> list:
    """split along axis 0 of a tensor of 2 or more dimensions."""
    if ary.ndim < 2:
        raise ValueError(f"vsplit: the tensor must have at least 2 dimensions, this one has {ary.ndim}")
    return split(ary, indices_or_sections, 0)


def dsplit(ary: Tensor, indices_or_sections) -> list:
    """split along axis 2 of a tensor of 3 or more dimensions."""
    if ary.ndim < 3:
        raise ValueError(f"dsplit: the tensor must have at least 3 dimensions, this one has {ary.ndim}")
    return split(ary, indices_or_sections, 2)


def _tensors(tup, op: str) -> list:
    """The items of ``tup`` as Tensors: numbers and lists become constants like the first Tensor."""
    items = list(tup)
    like = next((t for t in items if isinstance(t, Tensor)), None)
    if like is None:
        raise TypeError(f"{op}: needs at least one Tensor")
    out = []
    for item in items:
        if isinstance(item, Tensor):
            if item.device is not like.device:
                raise DeviceError(f"{op}: tensors are on different devices, {like.device} and {item.device}")
            out.append(item)
        elif isinstance(item, np.ndarray) and not like.device.is_host:
            raise DeviceError(f"{op}: a NumPy array (host memory) met a tensor on {like.device}; move it with "
                              f"dg.tensor(array, device='{like.device}')")
        else:
            out.append(Tensor._make(like.device.put(np.asarray(item, dtype=like.dtype)), like.device))
    return out


def _as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def hstack(tup) -> Tensor:
    """Join along axis 1 (axis 0 for 1-D tensors)."""
    arrays = _as_tuple(atleast_1d(*_tensors(tup, "hstack")))
    return concatenate(arrays, axis=0 if arrays[0].ndim == 1 else 1)


def vstack(tup) -> Tensor:
    """Join along axis 0, 1-D tensors as rows."""
    return concatenate(_as_tuple(atleast_2d(*_tensors(tup, "vstack"))), axis=0)


def dstack(tup) -> Tensor:
    """Join along axis 2, after making each tensor at least 3-D."""
    return concatenate(_as_tuple(atleast_3d(*_tensors(tup, "dstack"))), axis=2)


def column_stack(tup) -> Tensor:
    """Join 1-D tensors as columns (and 2-D tensors along axis 1)."""
    columns = [reshape(t, (-1, 1)) if t.ndim < 2 else t for t in _tensors(tup, "column_stack")]
    return concatenate(columns, axis=1)


def select(condlist, choicelist, default=0) -> Tensor:
    """Per element, the choice of the first condition that holds, else ``default``."""
    condlist, choicelist = list(condlist), list(choicelist)
    if len(condlist) != len(choicelist):
        raise ValueError(f"select: {len(condlist)} conditions but {len(choicelist)} choices; give one per condition")
    if not condlist:
        raise ValueError("select: the list of conditions is empty")
    for i, cond in enumerate(condlist):
        kind = (cond.dtype if isinstance(cond, Tensor) else np.asarray(cond).dtype).kind
        if kind != "b":  # NumPy refuses them too: a float or int list is no mask
            raise TypeError(f"select: condition {i} must be boolean, got dtype "
                            f"{cond.dtype if isinstance(cond, Tensor) else np.asarray(cond).dtype}; compare first, "
                            "e.g. x > 0")
    like = next((c for c in choicelist if isinstance(c, Tensor)), None)
    if like is None:
        raise TypeError("select: needs at least one Tensor among the choices")
    # the default as a constant of the choices' dtype, so that each step has a Tensor to pick with
    if not isinstance(default, Tensor):
        dtype = np.result_type(like.dtype, default) if isinstance(default, int | float) else like.dtype
        default = Tensor._make(like.xp.asarray(default, dtype=dtype), like.device)
    out = default
    for cond, choice in zip(reversed(condlist), reversed(choicelist)):
        out = where3(cond, choice, out)
    return out


def nonzero(a: Tensor) -> tuple:
    """The indices of the nonzero elements, one int64 tensor per axis (NumPy's nonzero, and
    ``dg.where(condition)``; not differentiable)."""
    if a.ndim == 0:
        raise ValueError("nonzero: a 0-d tensor has no axes to index; use dg.atleast_1d(x) first")
    return tuple(Tensor._make(i.astype(np.int64, copy=False), a.device) for i in a.xp.nonzero(a.data))


_NOT_GIVEN = object()


def where(condition, x=_NOT_GIVEN, y=_NOT_GIVEN):
    """``where(condition, x, y)``: x where the condition holds, else y (differentiable in x and
    y); ``where(condition)``: the indices where it holds, as ``nonzero``."""
    if x is _NOT_GIVEN and y is _NOT_GIVEN:
        if not isinstance(condition, Tensor):
            raise TypeError("where(condition): the condition must be a Tensor")
        return nonzero(condition)
    if x is _NOT_GIVEN or y is _NOT_GIVEN:
        raise TypeError("where: give both x and y, or neither (then it is nonzero(condition))")
    return where3(condition, x, y)


def array(obj, dtype=None, *, device=None) -> Tensor:
    """A tensor from data; a (nested) list of Tensors is stacked, so its gradient reaches them.
    Without Tensors inside it is ``dg.tensor(obj, dtype=dtype, device=device)``."""
    if isinstance(obj, Tensor):
        out = obj.clone()
    elif isinstance(obj, list | tuple) and _holds_tensor(obj):
        like = _first_tensor(obj)
        out = _stack_nested(obj, like)
    else:
        return Tensor(obj, device=device, dtype=dtype)
    if device is not None and resolve_device(device) is not out.device:
        raise DeviceError(f"array: the tensors are on {out.device}, not {device}; move them with .to(...)")
    return cast(out, dtype) if dtype is not None else out


def _holds_tensor(obj) -> bool:
    return isinstance(obj, Tensor) or (isinstance(obj, list | tuple) and any(_holds_tensor(o) for o in obj))


def _first_tensor(obj) -> Tensor:
    if isinstance(obj, Tensor):
        return obj
    return next(_first_tensor(o) for o in obj if _holds_tensor(o))


def _stack_nested(obj, like: Tensor) -> Tensor:
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, list | tuple):
        if not obj:
            raise ValueError("array: an empty list among tensors has no shape to stack")
        return stack([_stack_nested(o, like) for o in obj])
    return _tensors([like, obj], "array")[1]


def linspace(start, stop, num: int = 50, device=None, dtype=None, *, steps=None, endpoint: bool = True,
             axis: int = 0) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` (``stop`` excluded when
    ``endpoint=False``), as NumPy's linspace; PyTorch: ``steps``. Tensor endpoints (scalars or
    arrays, the values along a new ``axis``) give a result differentiable in both."""
    count = int(num if steps is None else steps)
    if count < 0:
        raise ValueError(f"linspace: the number of samples must be non-negative, got {count}")
    if not isinstance(start, Tensor) and not isinstance(stop, Tensor):
        if endpoint and axis == 0 and np.ndim(start) == 0 and np.ndim(stop) == 0:
            return constant_linspace(start, stop, count, device=device, dtype=dtype)
        dev = resolve_device(device) if device is not None else default_device()
        grid = np.linspace(start, stop, count, endpoint=endpoint, axis=axis)
        return Tensor._make(dev.put(grid.astype(as_dtype(dtype) or np.dtype(DEFAULT_FLOAT))), dev)
    start, stop = _tensors([start, stop], "linspace")
    if dtype is not None:
        start, stop = cast(start, dtype), cast(stop, dtype)
    shape = np.broadcast_shapes(start.shape, stop.shape)
    start, stop = broadcast_to(start, shape), broadcast_to(stop, shape)
    div = count - 1 if endpoint else count
    ramp = Tensor._make(start.xp.arange(count, dtype=start.dtype).reshape((count,) + (1,) * len(shape)), start.device)
    values = ramp * ((stop - start) / div) + start if div > 0 else ramp * (stop - start) + start
    if endpoint and count > 1:  # the last value is stop exactly, as NumPy's
        values = concatenate([getitem(values, slice(0, count - 1)), reshape(stop, (1,) + shape)], axis=0)
    return moveaxis(values, 0, axis) if axis != 0 else values


__all__ = ["array", "array_split", "column_stack", "dsplit", "dstack", "hsplit", "hstack", "linspace", "nonzero",
           "select", "split", "vsplit", "vstack", "where"]
