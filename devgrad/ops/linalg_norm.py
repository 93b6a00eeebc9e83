"""``dg.linalg.norm``: NumPy's vector and matrix norms, differentiable.

At a kink the gradient is PyTorch's: the 2-norm (and Frobenius) of zeros has gradient 0, the
inf-norm splits its gradient evenly among tied maxima (``torch.amax``), |x| has gradient 0 at 0;
the count of nonzeros (ord 0) has gradient 0 everywhere.
"""

from __future__ import annotations

import math
import numbers

from devgrad.core import Tensor
from devgrad.ops._util import one_axis
from devgrad.ops.elementwise import abs as _abs
from devgrad.ops.elementwise import link_zero
from devgrad.ops.linalg_decomp import svd
from devgrad.ops.reduce import sum as _sum
from devgrad.ops.shape import reshape, transpose
from devgrad.ops.statistics import amax, amin
from devgrad.ops.torch_methods import PNorm


def _vector_norm(x: Tensor, order, axis: int, keepdims: bool) -> Tensor:
    axes = (axis,)
    if order is None or order == 2:
        return PNorm.apply(x, p=2.0, axes=axes, keepdims=keepdims)
    if order == math.inf:
        return amax(_abs(x), axis=axes, keepdims=keepdims)
    if order == -math.inf:
        return amin(_abs(x), axis=axes, keepdims=keepdims)
    if order == 0:
        count = (x.data != 0).sum(axis=axes, keepdims=keepdims).astype(x.dtype)
        return link_zero(Tensor._make(count, x.device), x)
    if order == 1:
        return _sum(_abs(x), axis=axes, keepdims=keepdims)
    if isinstance(order, str) or not isinstance(order, numbers.Real):
        raise ValueError(f"dg.linalg.norm: invalid norm order {order!r} for vectors")
    return PNorm.apply(x, p=float(order), axes=axes, keepdims=keepdims)


def _matrix_norm(x: Tensor, order, axes: tuple, keepdims: bool) -> Tensor:
    row, col = axes
    if order is None or order == "fro":
        out = PNorm.apply(x, p=2.0, axes=tuple(sorted(axes)), keepdims=True)
    elif order == "nuc" or order in (2, -2):
        s = svd(_planes_last(x, row, col), compute_uv=False)
        out = s.sum(axis=-1) if order == "nuc" else _extreme(s, -1, order == 2)
        out = reshape(out, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
    elif order in (1, -1, math.inf, -math.inf):
        summed, reduced = (row, col) if order in (1, -1) else (col, row)
        sums = _sum(_abs(x), axis=summed, keepdims=True)
        out = _extreme(sums, reduced, order in (1, math.inf), keepdims=True)
    else:
        raise ValueError(f"dg.linalg.norm: invalid norm order {order!r} for matrices")
    return out if keepdims else reshape(out, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def _extreme(x: Tensor, axis: int, largest: bool, keepdims: bool = False) -> Tensor:
    """The largest (or smallest) value along ``axis``; the largest of nothing is 0 for a norm, as in
    NumPy and PyTorch (an empty matrix has norm 0), while the smallest of nothing has no value."""
    if x.shape[axis] == 0 and largest:
        return _sum(x, axis=axis, keepdims=keepdims)  # zeros, connected to x (a zero gradient)
    if x.shape[axis] == 0:
        raise ValueError("dg.linalg.norm: a negative matrix order (-1, -2, -inf) of an empty matrix has no value")
    return (amax if largest else amin)(x, axis=axis, keepdims=keepdims)


def _planes_last(x: Tensor, row: int, col: int) -> Tensor:
    """``x`` with the matrix axes (row, col) moved last, in that order."""
    rest = [i for i in range(x.ndim) if i not in (row, col)]
    perm = (*rest, row, col)
    return x if perm == tuple(range(x.ndim)) else transpose(x, perm)


def norm(x: Tensor, ord=None, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A002 - NumPy's name
    """``numpy.linalg.norm``: a vector norm (``axis`` an int, or a 1-D tensor) of order None/2, 1,
    inf, -inf, 0 or any p; a matrix norm (``axis`` a pair, or a 2-D tensor) of order None/'fro',
    'nuc', 1, -1, 2, -2, inf, -inf; with ``axis=None`` and ``ord=None``, the 2-norm of all elements."""
    if axis is None:
        if ord is None:
            flat = PNorm.apply(reshape(x, (-1,)), p=2.0, axes=(0,), keepdims=False)
            return reshape(flat, (1,) * x.ndim) if keepdims else flat
        if x.ndim not in (1, 2):
            raise ValueError(f"dg.linalg.norm: ord={ord!r} needs a 1-D or 2-D tensor or an axis, got shape {x.shape}")
        axis = tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    normalized = tuple(one_axis(a, x.ndim, "dg.linalg.norm") for a in axes)
    if len(normalized) == 1:
        return _vector_norm(x, ord, normalized[0], keepdims)
    if len(normalized) == 2 and normalized[0] != normalized[1]:
        return _matrix_norm(x, ord, normalized, keepdims)
    raise ValueError(f"dg.linalg.norm: axis must be one axis or a pair of distinct axes, got {axis!r}")
