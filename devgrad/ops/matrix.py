"""Matrix structure with NumPy's semantics: diagonal, trace, diag, diagflat, tril, triu, identity, tri.

Each is indexing or selection, so gradients of any order follow: a diagonal's gradient lands on the
diagonal, a triangle's on the triangle (selected, never multiplied by a 0/1 mask).
"""

from __future__ import annotations

import numbers

from devgrad.core import Tensor
from devgrad.creation import eye
from devgrad.ops._util import normalize_axis
from devgrad.ops.elementwise import Where
from devgrad.ops.shape import GetItem, IndexAdd, getitem, reshape, transpose


def diagonal(a: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1, *, dim1=None, dim2=None) -> Tensor:
    """``numpy.diagonal``: the diagonal of the (axis1, axis2) planes as the last axis (PyTorch's
    ``dim1``/``dim2`` are accepted)."""
    axis1 = axis1 if dim1 is None else dim1
    axis2 = axis2 if dim2 is None else dim2
    if a.ndim < 2:
        raise ValueError(f"diagonal: needs at least 2 dimensions, the tensor has shape {a.shape}")
    (i,), (j,) = normalize_axis(axis1, a.ndim), normalize_axis(axis2, a.ndim)
    if i == j:
        raise ValueError(f"diagonal: axis1 and axis2 are the same axis ({i})")
    rest = [k for k in range(a.ndim) if k not in (i, j)]
    moved = transpose(a, (*rest, i, j)) if (i, j) != (a.ndim - 2, a.ndim - 1) else a
    rows, cols = _diagonal_indices(moved.shape[-2], moved.shape[-1], offset, a.xp)
    return getitem(moved, (Ellipsis, rows, cols))


def _diagonal_indices(n: int, m: int, offset: int, xp) -> tuple:
    """Row and column indices of the ``offset`` diagonal of an n × m matrix."""
    length = max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m))
    start_row, start_col = (0, offset) if offset >= 0 else (-offset, 0)
    steps = xp.arange(length)
    return steps + start_row, steps + start_col


def trace(a: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype=None) -> Tensor:
    """``numpy.trace``: the sum of the diagonal (of each (axis1, axis2) plane)."""
    if dtype is not None:
        a = a.astype(dtype)
    return diagonal(a, offset, axis1, axis2).sum(axis=-1)


def diag(v: Tensor, k: int = 0) -> Tensor:
    """``numpy.diag``: a 1-D tensor's square matrix with it on diagonal ``k``; a 2-D one's diagonal ``k``."""
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError(f"diag: the input must be 1-D or 2-D, got shape {v.shape}")
    n = v.shape[0] + abs(k)
    rows, cols = _diagonal_indices(n, n, k, v.xp)
    return IndexAdd.apply(v, index=(rows, cols), shape=(n, n), accumulate=False)


def diagflat(v: Tensor, k: int = 0) -> Tensor:
    """``numpy.diagflat``: the flattened input on diagonal ``k`` of a square matrix."""
    return diag(reshape(v, (-1,)), k)


def _triangle(m: Tensor, k: int, lower: bool, op: str) -> Tensor:
    if m.ndim == 0:
        raise ValueError(f"{op}: needs at least 1 dimension, got a 0-d tensor")
    if m.ndim == 1:  # NumPy: a 1-D input is a row broadcast to a square matrix
        m = GetItem.apply(m, index=(None, slice(None)), accumulate=False).broadcast_to((m.shape[0], m.shape[0]))
    n, cols = m.shape[-2:]
    xp = m.xp
    keep = xp.tri(n, cols, k, dtype=bool) if lower else ~xp.tri(n, cols, k - 1, dtype=bool)
    return Where.apply(m, 0.0, cond=keep)


def tril(m: Tensor, k: int = 0) -> Tensor:
    """``numpy.tril``: the lower triangle (on and below diagonal ``k``) of the last two axes, zeros above."""
    return _triangle(m, k, True, "tril")


def triu(m: Tensor, k: int = 0) -> Tensor:
    """``numpy.triu``: the upper triangle (on and above diagonal ``k``) of the last two axes, zeros below."""
    return _triangle(m, k, False, "triu")


def identity(n: int, dtype=None, *, device=None) -> Tensor:
    """``numpy.identity``: the n × n identity matrix."""
    if not isinstance(n, numbers.Integral):
        raise TypeError(f"identity: n must be an int, got {n!r}")
    return eye(n, device=device, dtype=dtype)


def tri(n: int, m: int | None = None, k: int = 0, dtype=None, *, device=None) -> Tensor:
    """``numpy.tri``: ones on and below diagonal ``k`` of an n × m matrix, zeros above."""
    ones = eye(n, m, device=device, dtype=dtype)
    return Tensor._make(ones.xp.tri(n, m, k, dtype=ones.dtype), ones.device)
