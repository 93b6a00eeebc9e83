"""Shape and indexing ops: reshape, transpose, broadcast, concatenate, stack, squeeze, indexing."""

from __future__ import annotations

import numbers

import numpy as np

from devgrad.backend import Device, DeviceError
from devgrad.backend import device as resolve_device
from devgrad.core import Function, Tensor, as_dtype
from devgrad.creation import shape_from_args
from devgrad.ops._util import axis_arg, normalize_axis, one_axis, sum_to
from devgrad.ops.elementwise import cast
from devgrad.ops.views import note_remade, note_view, view_index


class Reshape(Function):
    __slots__ = ("in_shape",)
    array_backward = True
    arithmetic = False

    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} ({a.size} elements) "
                             f"into {tuple(shape)}") from None

    def backward(self, g):
        return g.reshape(self.in_shape)


class Transpose(Function):
    __slots__ = ("axes",)
    array_backward = True
    arithmetic = False

    def forward(self, a, axes):
        self.axes = axes
        return a.transpose(axes)

    def backward(self, g):
        axes = tuple(int(i) for i in np.argsort(self.axes))
        # Tensor.transpose with two axes is PyTorch's swap: the op itself keeps NumPy's permutation
        return self.for_kind(g, _transpose_op, _transpose_array)(g, axes)


def _transpose_op(a: Tensor, axes: tuple) -> Tensor:
    return Transpose.apply(a, axes=axes)


def _transpose_array(a, axes: tuple):
    return a.transpose(axes)


class BroadcastTo(Function):
    __slots__ = ("in_shape",)
    array_backward = True
    arithmetic = False

    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return self.device.xp.broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: shape {a.shape} cannot broadcast to {tuple(shape)} "
                             "(sizes must match or be 1, aligned from the right)") from None

    def backward(self, g):
        return sum_to(g, self.in_shape)


class Concatenate(Function):
    __slots__ = ("axis", "sizes")

    def forward(self, *arrays, axis):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        try:
            return self.device.xp.concatenate(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"concatenate: shapes {shapes} must match except along axis {axis}") from None

    def backward(self, g):
        grads = []
        start = 0
        lead = (slice(None),) * self.axis
        for size in self.sizes:
            grads.append(g[lead + (slice(start, start + size),)])
            start += size
        return tuple(grads)


class Stack(Function):
    __slots__ = ("axis", "count")

    def forward(self, *arrays, axis):
        self.axis = axis
        self.count = len(arrays)
        try:
            return self.device.xp.stack(arrays, axis=axis)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"stack: all tensors must have the same shape, got {shapes}") from None

    def backward(self, g):
        lead = (slice(None),) * self.axis
        return tuple(g[lead + (i,)] for i in range(self.count))


def _index_add(device, g, index, shape, accumulate: bool):
    """zeros(shape)[index] += g on arrays (repeated indices accumulate when ``accumulate``)."""
    out = device.xp.zeros(shape, dtype=g.dtype)
    if accumulate:
        device.kernels.scatter_add(out, index, g)
    else:
        out[index] = g
    return out


def indexed(a, index):
    """a[index]. A plain NumPy array indexed by an array of a subclass of ndarray (a step recorded for
    replay traces its arrays: ``devgrad.cpu_capture``) is looked at as that subclass, so that the
    lookup is recorded with the step rather than frozen at the recording's index."""
    if type(a) is np.ndarray:
        for part in index if type(index) is tuple else (index,):
            kind = type(part)
            if kind is not np.ndarray and isinstance(part, np.ndarray):
                return a.view(kind)[index]
    return a[index]


class GetItem(Function):
    """x[index] with NumPy semantics: ints, slices, None, Ellipsis, integer and boolean arrays."""

    __slots__ = ("in_shape", "index", "accumulate")
    array_backward = True

    def forward(self, a, index, accumulate):
        self.in_shape = a.shape
        self.index = index
        self.accumulate = accumulate
        return indexed(a, index)

    def backward(self, g):
        # a graph of the gradient: the scatter as an op, differentiable again
        scatter = self.for_kind(g, _index_add_op, _index_add)
        return scatter(self.device, g, self.index, self.in_shape, self.accumulate)


def _index_add_op(device, g: Tensor, index, shape: tuple, accumulate: bool) -> Tensor:
    """zeros(shape)[index] += g as the IndexAdd op (``_index_add``'s signature)."""
    return IndexAdd.apply(g, index=index, shape=shape, accumulate=accumulate)


class IndexAdd(Function):
    """zeros(shape)[index] += g — the gradient of indexing; repeated indices accumulate."""

    __slots__ = ("index",)

    def forward(self, g, index, shape, accumulate):
        self.index = index
        return _index_add(self.device, g, index, shape, accumulate)

    def backward(self, gg):
        return GetItem.apply(gg, index=self.index, accumulate=True)


class ToDevice(Function):
    """Explicit transfer to another device; the gradient travels back."""

    __slots__ = ("source",)

    def forward(self, a, target: Device):
        self.source = self.device
        self.device = target
        return target.put(a)

    def backward(self, g):
        return ToDevice.apply(g, target=self.source)


# -- index handling -----------------------------------------------------------------------

def _index_part(part, device: Device):
    if isinstance(part, Tensor):
        if part.device is not device:
            raise DeviceError(f"indexing: the index is on {part.device} but the tensor on {device}")
        return part.data
    if isinstance(part, list):
        return device.put(np.asarray(part))
    if isinstance(part, np.ndarray) and not device.is_host:
        return device.put(part)
    return part


def normalize_index(index, device: Device):
    """Replace Tensor and list parts of an index by arrays on ``device``."""
    if isinstance(index, tuple):
        return tuple(_index_part(p, device) for p in index)
    return _index_part(index, device)


def _has_integer_array(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    for p in parts:
        dtype = getattr(p, "dtype", None)
        if dtype is not None and getattr(p, "ndim", 0) > 0 and dtype.kind in "iu":
            return True
    return False


# -- function forms -----------------------------------------------------------------------

def reshape(a: Tensor, *shape) -> Tensor:
    """The same data with a new shape (one dimension may be -1)."""
    shape = shape_from_args(shape)
    if shape == a.shape:
        return a
    out = Reshape.apply(a, shape=shape)
    note_remade(a, out, (Reshape, {"shape": shape}))  # a view follows a later write of graph values into a
    return out


def transpose(a: Tensor, *axes) -> Tensor:
    """Permute axes (reverse them when none are given), like ``numpy.transpose``; two separate
    axes swap them, as ``torch.transpose(x, 0, 1)`` (NumPy's takes its axes as one sequence)."""
    if len(axes) == 2 and all(isinstance(ax, numbers.Integral) for ax in axes):
        return swapaxes(a, *axes)
    axes = shape_from_args(axes)
    if not axes:
        axes = tuple(range(a.ndim - 1, -1, -1))
    if sorted(int(x) % max(a.ndim, 1) for x in axes) != list(range(a.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of {a.ndim} dimensions")
    axes = tuple(int(x) % max(a.ndim, 1) for x in axes)
    out = _transpose_op(a, axes)
    note_remade(a, out, (Transpose, {"axes": axes}))  # a view follows a later write of graph values into a
    return out


def transpose_method(a: Tensor, *axes) -> Tensor:
    """``Tensor.transpose``: exactly two axes swap them, PyTorch's meaning, on any tensor
    (``x.transpose(0, 1)`` of a 2-D tensor is its transpose; NumPy's identity permutation is
    never written on purpose); otherwise NumPy's: no axes reverse them, a full permutation
    permutes them."""
    perm = shape_from_args(axes)
    if len(perm) == 2:
        return swapaxes(a, *perm)
    return transpose(a, perm)


def permute(a: Tensor, *dims) -> Tensor:
    """PyTorch's ``x.permute(*dims)``: the axes in the order given (a full permutation)."""
    dims = shape_from_args(dims)
    if len(dims) != a.ndim:
        raise ValueError(f"permute: {len(dims)} dims given for a tensor of {a.ndim} dimensions; name each once")
    return transpose(a, dims)


def swapaxes(a: Tensor, axis1: int, axis2: int) -> Tensor:
    """Swap two axes (PyTorch's ``transpose(dim0, dim1)``); a 0-d tensor takes axes 0 and -1."""
    if a.ndim == 0:
        normalize_axis(axis1, 0), normalize_axis(axis2, 0)  # the range check
        return a
    i, j = one_axis(axis1, a.ndim, "swapaxes"), one_axis(axis2, a.ndim, "swapaxes")
    perm = list(range(a.ndim))
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, tuple(perm))


def broadcast_to(a: Tensor, shape) -> Tensor:
    """Broadcast to ``shape`` (a view; the gradient is summed back)."""
    shape = tuple(shape)
    if shape == a.shape:
        return a
    out = BroadcastTo.apply(a, shape=shape)
    note_remade(a, out, (BroadcastTo, {"shape": shape}))  # a view follows a later write of graph values into a
    return out


def expand(a: Tensor, *shape) -> Tensor:
    """PyTorch's name for broadcast_to; -1 keeps a dimension."""
    shape = shape_from_args(shape)
    lead = len(shape) - a.ndim
    full = tuple(a.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return broadcast_to(a, full)


def concatenate(tensors, axis: int | None = None, *, dim=None) -> Tensor:
    """Join tensors along an existing axis (``dg.cat(tensors, dim=...)`` is the PyTorch spelling)."""
    axis = axis_arg(axis, dim, "concatenate")
    axis = 0 if axis is None else axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: need at least one tensor")
    if tensors[0].ndim == 0:
        raise ValueError("concatenate: 0-d tensors have no axis to join along; use dg.stack")
    axis = one_axis(axis, tensors[0].ndim, "concatenate")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis: int | None = None, *, dim=None) -> Tensor:
    """Join tensors along a new axis."""
    axis = axis_arg(axis, dim, "stack")
    axis = 0 if axis is None else axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    axis = one_axis(axis, tensors[0].ndim + 1, "stack")
    return Stack.apply(*tensors, axis=axis)


def squeeze(a: Tensor, axis=None, *, dim=None) -> Tensor:
    """Remove size-1 axes (all of them, or the given ones)."""
    axis = axis_arg(axis, dim, "squeeze")
    if axis is None:
        axes = tuple(i for i, s in enumerate(a.shape) if s == 1)
    else:
        axes = normalize_axis(axis, a.ndim)
        for ax in axes:
            if a.shape[ax] != 1:
                raise ValueError(f"squeeze: axis {ax} has size {a.shape[ax]}, not 1")
    return reshape(a, tuple(s for i, s in enumerate(a.shape) if i not in axes))


def unsqueeze(a: Tensor, axis: int | None = None, *, dim=None) -> Tensor:
    """Insert one size-1 axis at ``axis`` (PyTorch's ``unsqueeze``: one int)."""
    axis = axis_arg(axis, dim, "unsqueeze")
    if axis is None:
        raise TypeError("unsqueeze: give the axis (or dim) to insert")
    return expand_dims(a, one_axis(axis, a.ndim + 1, "unsqueeze"))


def expand_dims(a: Tensor, axis, *, dim=None) -> Tensor:
    """Insert size-1 axes at ``axis``: an int or a tuple of positions in the result (numpy.expand_dims)."""
    axis = axis_arg(axis, dim, "expand_dims")
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    ndim = a.ndim + len(axes)
    positions = normalize_axis(axes, ndim)
    rest = iter(a.shape)
    return reshape(a, tuple(1 if i in positions else next(rest) for i in range(ndim)))


def flatten(a: Tensor, start_axis: int = 0, *, start_dim=None) -> Tensor:
    """Collapse axes from ``start_axis`` (PyTorch: ``start_dim``) on into one."""
    start = start_axis if start_dim is None else start_dim
    return reshape(a, a.shape[:start] + (-1,))


def getitem(a: Tensor, index) -> Tensor:
    """``a[index]`` with NumPy semantics; repeated integer indices accumulate gradients."""
    index = normalize_index(index, a.device)
    if isinstance(index, numbers.Integral | slice) or index is Ellipsis:
        accumulate = False
    else:
        accumulate = _has_integer_array(index)
    index = view_index(index, a.ndim)  # x[1] of a vector: a 0-d view, as PyTorch's
    out = GetItem.apply(a, index=index, accumulate=accumulate)
    if out.data.base is not None:  # a view: x[1:3][0] = v is a write into x too (devgrad.ops.views)
        note_view(a, out, index)
    return out


def to_device(a: Tensor, target: Device) -> Tensor:
    """Copy ``a`` to ``target`` (differentiable; the gradient is copied back)."""
    if target is a.device:
        return a
    return ToDevice.apply(a, target=target)


def to(a: Tensor, device=None, dtype=None) -> Tensor:
    """``a`` on another device and/or dtype (``Tensor.to``): ``.to("cuda")``, ``.to(dg.float64)``,
    ``.to("cuda", "float64")``; differentiable, ``a`` itself when nothing changes."""
    if dtype is None and _is_dtype(device):
        device, dtype = None, device
    out = a
    if dtype is not None and as_dtype(dtype) != a.dtype:
        out = cast(out, dtype)
    if device is not None:
        out = to_device(out, resolve_device(device))
    return out


def _is_dtype(value) -> bool:
    """Is ``value`` a dtype (``np.float64``, ``"float32"``) rather than a device?"""
    if isinstance(value, type | np.dtype):
        return True
    if isinstance(value, str):
        try:
            as_dtype(value)
        except TypeError:
            return False
        return True
    return False
