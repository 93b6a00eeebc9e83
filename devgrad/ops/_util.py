"""Helpers shared by the op files: operand conversion and broadcast reduction."""

from __future__ import annotations

import numbers
import operator

import numpy as np

from devgrad.backend import DeviceError
from devgrad.core import Function, Tensor


def operand(x, like: Tensor, op: str):
    """Prepare the second operand of a binary op.

    Tensors pass through; Python and NumPy scalars become Python scalars (so float32 stays
    float32 under NEP 50 promotion); lists and host arrays become constant tensors on
    ``like``'s device — except a host array meeting a GPU tensor, which would be a hidden
    transfer and raises instead.
    """
    if isinstance(x, Tensor):
        return x
    if isinstance(x, bool | numbers.Number) and not isinstance(x, np.generic):
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return x.item()
        if not like.device.is_host:
            raise DeviceError(f"{op}: a NumPy array (host memory) met a tensor on {like.device}; "
                              f"move it explicitly with dg.tensor(array, device='{like.device}')")
        return Tensor._make(x, like.device)
    if isinstance(x, list | tuple):
        return Tensor._make(like.device.put(np.asarray(x)), like.device)
    if hasattr(x, "__cuda_array_interface__"):
        raise DeviceError(f"{op}: a raw CuPy array met a tensor on {like.device}; wrap it with dg.tensor(...)")
    raise TypeError(f"{op}: unsupported operand of type {type(x).__name__}")


def shape_of(x) -> tuple:
    """Shape of an array, or () for a Python scalar."""
    return getattr(x, "shape", ())


def sum_axes(x, axes: tuple, device=None):
    """``x`` summed over ``axes``: a Tensor through the graph; a raw array through the device's
    reduction (``device.kernels.sum_axes``: NumPy's sum on the CPU, a GEMM with a ones vector
    on a GPU, which needs no kernel compilation and is capturable) when ``device`` is given."""
    if device is None:
        return x.sum(axis=axes)
    return Function.for_kind(x, _sum_op, device.kernels.sum_axes)(x, axes)


def _sum_op(x: Tensor, axes: tuple) -> Tensor:
    return x.sum(axis=axes)


def sum_to(grad, shape: tuple, device=None):
    """Sum a broadcast gradient back down to ``shape`` (the input's shape). Works alike on a
    Tensor (the graph-building backward) and on a raw array (the first-order fast path)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, size in enumerate(shape) if size == 1 and grad.shape[i + lead] != 1)
    out = sum_axes(grad, axes, device) if axes else grad
    return out if out.shape == shape else out.reshape(shape)


def data_of(x):
    """The array of a Tensor, or a Python scalar as it is."""
    return x.data if isinstance(x, Tensor) else x


def normalize_axis(axis, ndim: int) -> tuple:
    """Axis argument (None, int or sequence, negatives allowed) as a sorted tuple of ints; on a
    0-d tensor axis 0 or -1 gives () (PyTorch accepts them)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise np.exceptions.AxisError(f"axis {a} is out of bounds for a tensor of dimension {ndim}")
        out.append(int(a) % max(ndim, 1))
    if ndim == 0:  # PyTorch's rule: a 0-d tensor takes axis 0 or -1, which names no axis to reduce
        return ()
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(out))


def one_axis(axis, ndim: int, op: str) -> int:
    """``axis`` as the one non-negative axis an op that takes a single axis works along. A tuple or
    list is a TypeError, as in NumPy and PyTorch (taking one of its axes would silently compute
    something else); an axis out of range is NumPy's AxisError. A 0-d tensor takes axis 0 or -1."""
    try:
        index = operator.index(axis)
    except TypeError:
        raise TypeError(f"{op}: axis must be one integer, got {axis!r}") from None
    if ndim == 0:
        normalize_axis(index, 0)  # the range check: 0 or -1
        return 0
    return normalize_axis(index, ndim)[0]


def keepdims_shape(shape: tuple, axes: tuple) -> tuple:
    """The shape a reduction over ``axes`` has with keepdims=True."""
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def axis_arg(axis, dim, op: str):
    """``axis``, or PyTorch's ``dim`` for it (accepted as an alias; not both). An empty ``dim``
    is refused: PyTorch reduces every axis for ``dim=()``, NumPy none for ``axis=()``."""
    if dim is None:
        return axis
    if isinstance(dim, tuple | list) and not dim:
        raise TypeError(f"{op}: dim={dim!r} reduces every axis in PyTorch but none in NumPy (axis=()); write "
                        f"dim=None for every axis or axis=() for none")
    if axis is not None:
        raise TypeError(f"{op}: give axis or dim (PyTorch's name for it), not both")
    return dim


def keepdims_arg(keepdims: bool, keepdim) -> bool:
    """``keepdims``, or PyTorch's ``keepdim`` for it."""
    return bool(keepdim) if keepdim is not None else keepdims


def index_array(index, a: Tensor, op: str):
    """An integer index (Tensor, list or array) as an array on ``a``'s device, refused with the op's
    name when it is on another device or does not hold integers."""
    data = index.data if isinstance(index, Tensor) else a.device.put(np.asarray(index))
    if isinstance(index, Tensor) and index.device is not a.device:
        raise ValueError(f"{op}: the index is on {index.device} but the tensor on {a.device}")
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: the index must hold integers, got dtype {data.dtype}")
    return data
