"""Tensor methods with PyTorch's meaning: gather, index_select, masked_fill, chunk, split, repeat,
norm, nonzero, unique, isclose/allclose, bmm, expand_as, type_as, ...

Each is built from the differentiable ops (indexing, where, broadcast, reshape), so first and
higher-order gradients come from those; ``norm`` is one op, for PyTorch's zero gradient at 0.
Where NumPy's method of the same name means something else (``repeat``, ``split``,
``nonzero``), a call that could mean either, with different results, is an error that shows
both spellings (docs/pytorch.md).
"""

from __future__ import annotations

import itertools
import numbers

import numpy as np

from devgrad.core import Function, Tensor
from devgrad.creation import shape_from_args
from devgrad.ops._util import index_array, normalize_axis, one_axis, operand
from devgrad.ops.elementwise import Where, abs, add, cast, div, mul, sub, where
from devgrad.ops.linalg import matmul
from devgrad.ops.piecewise import sign
from devgrad.ops.power import reciprocal
from devgrad.ops.reduce import max as amax
from devgrad.ops.reduce import min as amin
from devgrad.ops.reduce import sum as asum
from devgrad.ops.shape import broadcast_to, expand, getitem, reshape


def _dim(a: Tensor, dim, op: str) -> int:
    if not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an integer, got {dim!r}")
    return one_axis(dim, a.ndim, op)


def _refuse_negative(idx, a: Tensor, op: str) -> None:
    """PyTorch's ``gather`` and ``index_select`` refuse a negative index, where NumPy's indexing
    would silently count from the end (an ignore label of -1 would pick the last entry)."""
    if a.device.host_reads_are_free and idx.size and idx.min() < 0:
        raise IndexError(f"{op}: indices must be >= 0 (PyTorch's {op}), got {int(idx.min())}; a negative index "
                         f"does not count from the end here")


def reciprocal_method(a: Tensor) -> Tensor:
    """PyTorch's ``x.reciprocal()``: 1/x in floating point also for an integer or bool tensor,
    where NumPy's integer reciprocal truncates (1/2 gives 0); float64, as ``1 / x`` gives."""
    return reciprocal(cast(a, np.float64) if a.dtype.kind in "biu" else a)


def gather(a: Tensor, dim: int, index) -> Tensor:
    """PyTorch's ``gather``: out[i][j] = a[index[i][j]][j] for dim=0 (NumPy's take_along_axis);
    ``index`` has ``a``'s number of dimensions and may be smaller in the others."""
    dim = _dim(a, dim, "gather")
    idx = index_array(index, a, "gather")
    if idx.ndim != a.ndim:
        raise ValueError(f"gather: index has {idx.ndim} dimensions, the tensor {a.ndim}; they must match")
    if any(i > s for d, (i, s) in enumerate(zip(idx.shape, a.shape)) if d != dim):
        raise ValueError(f"gather: index shape {idx.shape} exceeds the tensor's {a.shape} outside dim {dim}")
    _refuse_negative(idx, a, "gather")
    xp = a.xp
    parts = []
    for d, size in enumerate(idx.shape):
        if d == dim:
            parts.append(idx)
        else:
            shape = [1] * idx.ndim
            shape[d] = size
            parts.append(xp.arange(size).reshape(shape))
    return getitem(a, tuple(parts))


def index_select(a: Tensor, dim: int, index) -> Tensor:
    """The entries at ``index`` (1-D integers) along ``dim``; repeated indices accumulate gradients."""
    dim = _dim(a, dim, "index_select")
    idx = index_array(index, a, "index_select")
    if idx.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {idx.shape}")
    _refuse_negative(idx, a, "index_select")
    return getitem(a, (slice(None),) * dim + (idx.reshape(-1),))


def masked_fill(a: Tensor, mask, value) -> Tensor:
    """``value`` where ``mask`` is true, ``a`` elsewhere (the mask broadcasts to ``a``'s shape)."""
    mask_data = mask.data if isinstance(mask, Tensor) else a.device.put(np.asarray(mask))
    if mask_data.dtype != np.bool_:
        raise TypeError(f"masked_fill: the mask must be boolean, got dtype {mask_data.dtype}")
    try:
        mask_data = a.xp.broadcast_to(mask_data, a.shape)
    except ValueError:
        raise ValueError(f"masked_fill: a mask of shape {mask_data.shape} does not broadcast to {a.shape}") from None
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        value = cast(value, a.dtype)
    elif a.dtype.kind in "biu":  # PyTorch keeps the tensor's dtype: 2.5 fills an integer tensor with 2
        value = np.asarray(value).astype(a.dtype).item()
    return where(Tensor._make(mask_data, a.device), value, a)


def _pieces(a: Tensor, dim: int, sizes) -> tuple:
    lead = (slice(None),) * dim
    out, start = [], 0
    for size in sizes:
        out.append(getitem(a, lead + (slice(start, start + size),)))
        start += size
    return tuple(out)


def _torch_split(a: Tensor, split_size, dim: int) -> tuple:
    n = a.shape[dim]
    if isinstance(split_size, numbers.Integral):
        if split_size <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size}")
        sizes = [min(int(split_size), n - s) for s in range(0, n, int(split_size))] or [0]
    else:
        sizes = [int(s) for s in split_size]
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but dim {dim} has size {n}")
    return _pieces(a, dim, sizes)


def _numpy_split(a: Tensor, sections, axis: int) -> tuple:
    n = a.shape[axis]
    if isinstance(sections, numbers.Integral):
        if sections <= 0 or n % sections:
            raise ValueError(f"split: axis {axis} of size {n} does not divide into {sections} equal sections "
                             "(NumPy's split); give the indices to split at, or PyTorch's dim= for pieces of a size")
        bounds = list(range(0, n + 1, n // sections)) if n else [0] * (int(sections) + 1)
    else:
        bounds = [0, *(int(np.clip(i if i >= 0 else i + n, 0, n)) for i in sections), n]
    return _pieces(a, axis, [max(hi - lo, 0) for lo, hi in itertools.pairwise(bounds)])



def split(a: Tensor, split_size_or_sections, dim=None, *, axis=None) -> tuple:
    """``x.split(2, dim=0)``: PyTorch's pieces of size 2 (or of the sizes a list gives);
    ``x.split(2, axis=0)``: NumPy's 2 equal sections (or a split at a list's indices). Without
    ``dim=`` or ``axis=`` the two differ, so that is an error that shows both."""
    if dim is not None and axis is not None:
        raise TypeError("split: give dim= (PyTorch's: pieces of a size) or axis= (NumPy's: sections), not both")
    if dim is None and axis is None:
        raise TypeError(f"x.split({split_size_or_sections!r}) means two things: PyTorch's x.split(size, dim=0) "
                        "cuts pieces of that size (or of the sizes a list gives), NumPy's x.split(n, axis=0) "
                        "(dg.split) cuts n equal sections (or at a list's indices); name dim= or axis=")
    if dim is not None:
        return _torch_split(a, split_size_or_sections, _dim(a, dim, "split"))
    return _numpy_split(a, split_size_or_sections, _dim(a, axis, "split"))


def chunk(a: Tensor, chunks: int, dim: int = 0) -> tuple:
    """PyTorch's ``chunk``: at most ``chunks`` pieces of ceil(size / chunks) along ``dim`` (the
    last may be smaller, and there may be fewer)."""
    if not isinstance(chunks, numbers.Integral) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive integer, got {chunks!r}")
    dim = _dim(a, dim, "chunk")
    n = a.shape[dim]
    if n == 0:  # PyTorch gives ``chunks`` empty pieces of an empty dimension
        return _pieces(a, dim, [0] * int(chunks))
    return _torch_split(a, -(-n // int(chunks)), dim)


def _tile(a: Tensor, reps: tuple) -> Tensor:
    """PyTorch's ``repeat`` (NumPy's ``tile``): broadcast a size-1 axis in front of each axis, then
    merge the pairs (differentiable through broadcast and reshape)."""
    shape = (1,) * (len(reps) - a.ndim) + a.shape
    interleaved = reshape(a, tuple(v for s in shape for v in (1, s)))
    wide = broadcast_to(interleaved, tuple(v for r, s in zip(reps, shape) for v in (r, s)))
    return reshape(wide, tuple(r * s for r, s in zip(reps, shape)))


def _numpy_repeat(a: Tensor, repeats, axis) -> Tensor:
    """NumPy's ``repeat``: each element (along ``axis``; of the flattened tensor for None) ``repeats`` times."""
    if axis is None:
        a, axis = reshape(a, -1), 0
    axis = _dim(a, axis, "repeat")
    counts = np.asarray(repeats.numpy() if isinstance(repeats, Tensor) else repeats)
    order = np.repeat(np.arange(a.shape[axis]), counts)
    return getitem(a, (slice(None),) * axis + (a.device.put(order),))


_NO_AXIS = object()  # repeat's axis was not given (axis=None is NumPy's "flattened")


def tile(a: Tensor, *reps) -> Tensor:
    """The whole tensor ``reps`` times along each axis (``torch.Tensor.tile`` and ``numpy.tile``
    agree; fewer reps than dimensions count from the last)."""
    reps = shape_from_args(reps)
    if any(not isinstance(r, numbers.Integral) or r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative integers, got {reps}")
    return _tile(a, (1,) * (a.ndim - len(reps)) + tuple(int(r) for r in reps))


def repeat(a: Tensor, *sizes, axis=_NO_AXIS) -> Tensor:
    """``x.repeat(2, 3)`` on a 2-D tensor: PyTorch's, the whole tensor 2 × 3 times (NumPy's
    ``tile``); ``x.repeat(2, axis=0)``: NumPy's, each element twice. A call both could mean
    (``x.repeat(3)`` on a 1-D tensor, ``x.repeat(4, 1)`` on a 2-D one) is an error that shows
    both spellings: ``x.tile(...)`` is PyTorch's repeat under a name with one meaning."""
    if axis is not _NO_AXIS:
        if len(sizes) != 1:
            raise TypeError("repeat with axis= is NumPy's: x.repeat(repeats, axis=...), one repeats argument")
        return _numpy_repeat(a, sizes[0], axis)
    reps = shape_from_args(sizes)
    if any(not isinstance(r, numbers.Integral) or r < 0 for r in reps):
        raise ValueError(f"repeat: sizes must be non-negative integers, got {reps}")
    spelled = ", ".join(str(r) for r in reps)
    numpy_could = len(sizes) == 1 or (len(sizes) == 2 and -max(a.ndim, 1) <= reps[1] < max(a.ndim, 1))
    if len(reps) < a.ndim:
        raise ValueError(f"x.repeat({spelled}) on a {a.ndim}-D tensor: PyTorch's repeat needs a size per dimension "
                         f"(x.tile({spelled}) counts from the last); NumPy's is x.repeat(n, axis=...)")
    if numpy_could and not (a.ndim == 0 or a.size <= 1 or all(r == 1 for r in reps)):
        where_ = f"along axis {reps[1]}" if len(sizes) == 2 else "of the flattened tensor"
        raise TypeError(f"x.repeat({spelled}) means two things on a {a.ndim}-D tensor: PyTorch's repeats the whole "
                        f"tensor ({spelled}) times, NumPy's each element {reps[0]} times {where_}. Write "
                        f"x.tile({spelled}) for PyTorch's, x.repeat({reps[0]}, axis="
                        f"{reps[1] if len(sizes) == 2 else None}) for NumPy's")
    return _tile(a, reps)


class PNorm(Function):
    """(Σ|x|^p)^(1/p) over ``axes`` for any p but 0 and ±inf; the gradient sign(x)·|x|^(p−1) /
    norm^(p−1) is 0 where the norm is 0 and, for p ≠ 2, where x is 0 (PyTorch's choices at the
    kinks), written with Tensor ops on safe values so that it is differentiable again."""

    __slots__ = ("p", "axes", "keepdims")
    save_inputs = True
    save_output = True

    def forward(self, a, p, axes, keepdims):
        self.p, self.axes, self.keepdims = p, axes, keepdims
        xp = self.device.xp
        if p == 2.0:
            return xp.sqrt(xp.sum(a * a, axis=axes, keepdims=keepdims))
        # the power of an array, also for a whole sum (NumPy's scalar ** is the C library's pow, which a
        # step replayed on arrays would not repeat bit for bit)
        return xp.power(xp.asarray(xp.sum(xp.abs(a) ** p, axis=axes, keepdims=keepdims)), 1.0 / p)

    def backward(self, g):
        x = self.inputs[0]
        norm = self.output()
        if not self.keepdims:
            kept = tuple(1 if i in self.axes else s for i, s in enumerate(x.shape))
            norm, g = norm.reshape(kept), g.reshape(kept)
        xp = self.device.xp
        zero = xp.broadcast_to(norm.data == 0, x.shape)
        if self.p == 2.0:
            return g * Where.apply(0.0, x / norm, cond=zero)
        # |x|^(p-1) is inf at x = 0 for p < 1 and its derivative for p < 2: the formula runs on
        # safe values, so no inf·0 = NaN reaches the selected entries, at this order or the next
        zero = zero | (x.data == 0)
        safe_x = Where.apply(1.0, x, cond=zero)
        safe_norm = Where.apply(1.0, norm, cond=norm.data == 0)
        ratio = sign(safe_x) * abs(safe_x) ** (self.p - 1.0) / safe_norm ** (self.p - 1.0)
        return g * Where.apply(0.0, ratio, cond=zero)


def norm(a: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """PyTorch's ``Tensor.norm``: the vector p-norm over ``dim`` (every element by default);
    p = 'fro' or 2, 1, inf, -inf, 0 (the count of nonzeros) or any p > 1."""
    if dtype is not None:
        a = cast(a, dtype)
    if p == "nuc" or (isinstance(p, str) and p != "fro"):
        raise ValueError(f"norm: p={p!r} is not a vector norm; use p='fro', a number, or dg.linalg.norm for "
                         "matrix norms")
    p = 2.0 if p == "fro" else float(p)
    axes = normalize_axis(dim, a.ndim)
    if p == 1.0:
        return asum(abs(a), axis=axes, keepdims=keepdim)
    if p == np.inf:
        return amax(abs(a), axis=axes, keepdims=keepdim)
    if p == -np.inf:
        return amin(abs(a), axis=axes, keepdims=keepdim)
    if p == 0.0:
        return Tensor._make((a.data != 0).sum(axis=axes, keepdims=keepdim).astype(a.dtype), a.device)
    if not p > 1.0:
        raise ValueError(f"norm: p={p} is not supported; use p >= 1, inf, -inf or 0")
    return PNorm.apply(a, p=p, axes=axes, keepdims=bool(keepdim))


def nonzero(a: Tensor, *, as_tuple=None):
    """``x.nonzero(as_tuple=False)``: PyTorch's (count, ndim) int64 index tensor;
    ``as_tuple=True``: one index tensor per dimension (NumPy's ``nonzero`` and PyTorch's tuple)."""
    if as_tuple is None:
        raise TypeError("x.nonzero() means two things: PyTorch's gives a (count, ndim) tensor of indices, NumPy's a "
                        "tuple of one index tensor per dimension; write x.nonzero(as_tuple=False) for the first, "
                        "x.nonzero(as_tuple=True) for the second")
    if as_tuple:
        return tuple(Tensor._make(i, a.device) for i in a.xp.nonzero(a.data if a.ndim else a.data.reshape(1)))
    return Tensor._make(a.xp.argwhere(a.data).astype(np.int64), a.device)


def unique(a: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,  # noqa: A002
           dim=None):
    """The distinct values, sorted (PyTorch's ``unique``; not differentiable); with
    ``return_inverse`` / ``return_counts`` a tuple that adds them."""
    axis = None if dim is None else _dim(a, dim, "unique")
    data = a.device.to_host(a.data)
    values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True, axis=axis)
    out = [Tensor._make(a.device.put(values), a.device)]
    if return_inverse:
        shape = data.shape if axis is None else (data.shape[axis],)
        out.append(Tensor._make(a.device.put(inverse.reshape(shape).astype(np.int64)), a.device))
    if return_counts:
        out.append(Tensor._make(a.device.put(counts.astype(np.int64)), a.device))
    return out[0] if len(out) == 1 else tuple(out)


def _pair(a: Tensor, other, op: str):
    if not isinstance(other, Tensor):
        other = Tensor._make(a.device.put(np.asarray(other)), a.device)
    if other.device is not a.device:
        raise ValueError(f"{op}: tensors are on different devices, {a.device} and {other.device}")
    return a.data, other.data


def isclose(a: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """|a − other| <= atol + rtol·|other| per element, as a boolean tensor (not differentiable)."""
    x, y = _pair(a, other, "isclose")
    return Tensor._make(a.xp.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan), a.device)


def allclose(a: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when every element is close (``isclose``); a Python bool (reads the device)."""
    x, y = _pair(a, other, "allclose")
    return bool(a.xp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan))


def bmm(a: Tensor, other: Tensor) -> Tensor:
    """Batched matrix product of (b, n, m) and (b, m, p) tensors (PyTorch's ``bmm``)."""
    if a.ndim != 3 or other.ndim != 3 or a.shape[0] != other.shape[0] or a.shape[2] != other.shape[1]:
        raise ValueError(f"bmm: expected (b, n, m) and (b, m, p) tensors, got {a.shape} and {other.shape}")
    return matmul(a, other)


def expand_as(a: Tensor, other: Tensor) -> Tensor:
    """``a`` broadcast to ``other``'s shape."""
    return expand(a, *other.shape)


def type_as(a: Tensor, other: Tensor) -> Tensor:
    """``a`` in ``other``'s dtype (differentiable between floating types)."""
    return cast(a, other.dtype)


def contiguous(a: Tensor) -> Tensor:
    """``a`` itself: devgrad's ops take arrays of any memory layout."""
    return a


def _scaled(a: Tensor, other, alpha, op: str):
    """alpha·other, ``other`` first made an operand of ``a`` (a list times an int would repeat it)."""
    if alpha == 1:
        return other
    other = operand(other, a, op)
    return mul(other, alpha) if isinstance(other, Tensor) else other * alpha


def add_method(a: Tensor, other, *, alpha=1) -> Tensor:
    """``x.add(other, alpha=2)``: x + alpha·other (PyTorch's)."""
    return add(a, _scaled(a, other, alpha, "add"))


def sub_method(a: Tensor, other, *, alpha=1) -> Tensor:
    """``x.sub(other, alpha=2)``: x − alpha·other (PyTorch's)."""
    return sub(a, _scaled(a, other, alpha, "sub"))


def div_method(a: Tensor, other, *, rounding_mode=None) -> Tensor:
    """``x.div(other)``: x / other (true division; ``rounding_mode`` is not supported)."""
    if rounding_mode is not None:
        raise ValueError(f"div: rounding_mode={rounding_mode!r} is not supported; use (x / y).floor() style ops")
    return div(a, other)


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Collapse the axes ``start_dim`` to ``end_dim`` (both included) into one, as PyTorch's."""
    if a.ndim == 0:
        return reshape(a, 1)
    start, end = one_axis(start_dim, a.ndim, "flatten"), one_axis(end_dim, a.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(a, a.shape[:start] + (-1 if a.size == 0 else int(np.prod(a.shape[start:end + 1])),)
                   + a.shape[end + 1:])
