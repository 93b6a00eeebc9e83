"""Scans and orderings: cumsum, cumprod, prod, diff, sort, argsort and PyTorch's topk.

Sorting is a permutation: its values are the input gathered at the sorted indices (an indexing
op, so the gradient of each sorted value goes back to the element that landed there, at any
order). Ties are ordered by a stable sort, first occurrence first, as ``torch.sort(stable=True)``.
"""

from __future__ import annotations

import numbers

from devgrad.core import Function, Tensor, is_grad_enabled
from devgrad.ops._util import axis_arg, keepdims_arg, keepdims_shape, normalize_axis, one_axis, operand
from devgrad.ops.elementwise import Where
from devgrad.ops.layout import take_along_axis
from devgrad.ops.reduce import MinMax as ValuesIndices  # (values, indices), as PyTorch's sort/topk give
from devgrad.ops.shape import concatenate, getitem, reshape, transpose


class CumSum(Function):
    """Running sum along one axis; ``reverse`` sums from the end (the gradient of a running sum
    is the reversed running sum of its gradient)."""

    __slots__ = ("axis", "reverse")
    array_backward = True

    def forward(self, a, axis, reverse):
        self.axis, self.reverse = axis, reverse
        return _cumsum(self.device.xp, a, axis, reverse)

    def backward(self, g):
        return self.for_kind(g, _cumsum_op, _cumsum)(self.device.xp, g, self.axis, not self.reverse)


def _cumsum_op(xp, a: Tensor, axis: int, reverse: bool) -> Tensor:
    return CumSum.apply(a, axis=axis, reverse=reverse)


def _cumsum(xp, a, axis: int, reverse: bool):
    if not reverse:
        return xp.cumsum(a, axis=axis)
    return xp.flip(xp.cumsum(xp.flip(a, axis), axis=axis), axis)


class CumProd(Function):
    """Running product along one axis. Without zeros the gradient is revcumsum(g·out) / x; with
    zeros it is exact too: O(n) for a first-order gradient, O(n²) memory per slice when a graph
    of the gradient is built (its derivatives need every product of the other factors)."""

    __slots__ = ("axis",)
    save_inputs = True
    save_output = True

    def forward(self, a, axis):
        self.axis = axis
        return self.device.xp.cumprod(a, axis=axis)

    def backward(self, g):
        x = self.inputs[0]
        if not bool((x.data == 0).any()):
            return CumSum.apply(g * self.output(), axis=self.axis, reverse=True) / x
        exact_graph = is_grad_enabled()  # a graph of this gradient is being built (create_graph=True)
        return _moved(_cumprod_grad_graph if exact_graph else _cumprod_grad_with_zeros, self.axis, g, x, self.output())


def _moved(fn, axis: int, *tensors):
    """``fn`` applied with ``axis`` moved last, and the result's last axis moved back."""
    ndim = tensors[0].ndim
    perm = [i for i in range(ndim) if i != axis] + [axis]
    back = [perm.index(i) for i in range(ndim)]
    return transpose(fn(*(transpose(t, perm) for t in tensors)), back)


def _cumprod_grad_with_zeros(g, x, out):
    """d(sum_k g_k·out_k)/dx_i over the last axis, exact with zeros, in O(n) memory: with z the
    first zero of a slice, i < z has sum_{k>=i} g_k·out_k / x_i (no zero divides), i = z has
    prod_{j<z} x_j · sum_{k>=z} g_k·prod_{z<j<=k} x_j, and i > z has 0 (x_z is in every product).
    Its value is exact; as a graph it would miss the terms that x_z = 0 cancels, so a graph of
    the gradient uses :func:`_cumprod_grad_graph`."""
    xp, n = x.xp, x.shape[-1]
    zero = x.data == 0
    first = xp.where(zero.any(axis=-1, keepdims=True), xp.argmax(zero, axis=-1)[..., None], n)
    position = xp.arange(n)
    before = position < first
    safe = _where(before, x, 1.0)  # x before the first zero, 1 from it on
    reaching = CumSum.apply(g * out, axis=x.ndim - 1, reverse=True)
    head = cumprod(safe, axis=-1)[..., -1:]  # prod_{j<z} x_j
    tail = cumprod(_where(position <= first, 1.0, x), axis=-1)  # [k] = prod_{z<j<=k} x_j for k >= z
    at_zero = head * _where(position >= first, g * tail, 0.0).sum(axis=-1, keepdims=True)
    return _where(before, reaching / safe, _where(position == first, at_zero, 0.0))


def _cumprod_grad_graph(g, x, _out):
    """The same gradient as every product of the other factors, sum_{k>=i} g_k·prod_{j<=k, j!=i} x_j,
    a polynomial in x, so its own derivatives are exact too (O(n²) memory per slice)."""
    xp, n = x.xp, x.shape[-1]
    others = _where(xp.eye(n, dtype=bool), 1.0, x.reshape(*x.shape[:-1], 1, n).broadcast_to((*x.shape, n)))
    partial = cumprod(others, axis=-1)  # [..., i, k] = prod_{j<=k, j!=i} x_j
    after = xp.triu(xp.ones((n, n), dtype=bool))  # k >= i
    return _where(after, partial * g.reshape(*g.shape[:-1], 1, n), 0.0).sum(axis=-1)


def _where(cond, a, b):
    """where(cond, a, b) with a raw boolean array ``cond`` (never differentiated)."""
    return Where.apply(a, b, cond=cond)


class Prod(Function):
    """Product over axes. Its gradient is the product of the other elements: g·out/x without
    zeros, else the exclusive running products from both sides (exact with any zeros)."""

    __slots__ = ("axes", "keepdims")
    save_inputs = True
    save_output = True

    def forward(self, a, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims
        return self.device.xp.prod(a, axis=axes, keepdims=keepdims)

    def backward(self, g):
        x = self.inputs[0]
        shape = keepdims_shape(x.shape, self.axes)
        g = g.reshape(shape)
        if not bool((x.data == 0).any()):
            return g * self.output().reshape(shape) / x
        return g * _over_axes(_product_of_others, x, self.axes)


def _over_axes(fn, x, axes):
    """``fn`` (which works along the last axis) applied to ``axes`` of ``x`` flattened into one."""
    rest = [i for i in range(x.ndim) if i not in axes]
    perm = [*rest, *axes]
    moved = transpose(x, perm)
    out = fn(moved.reshape(*moved.shape[:len(rest)], -1)).reshape(moved.shape)
    return transpose(out, [perm.index(i) for i in range(x.ndim)])


def _product_of_others(x):
    """prod_{j != i} x_j for each i along the last axis, from exclusive running products."""
    one = Tensor._make(x.xp.ones((*x.shape[:-1], 1), dtype=x.dtype), x.device)
    left = cumprod(concatenate([one, x[..., :-1]], axis=-1), axis=-1)
    right = cumprod(concatenate([one, _flip_last(x)[..., :-1]], axis=-1), axis=-1)
    return left * _flip_last(right)


def _flip_last(x):
    return getitem(x, (Ellipsis, slice(None, None, -1)))


def cumsum(a: Tensor, axis=None, dtype=None, *, dim=None) -> Tensor:
    """Running sum along ``axis`` (None: of the flattened tensor), as ``numpy.cumsum``."""
    a, axis = _scan_args(a, axis_arg(axis, dim, "cumsum"), dtype)
    return CumSum.apply(a, axis=axis, reverse=False)


def cumprod(a: Tensor, axis=None, dtype=None, *, dim=None) -> Tensor:
    """Running product along ``axis`` (None: of the flattened tensor), as ``numpy.cumprod``."""
    a, axis = _scan_args(a, axis_arg(axis, dim, "cumprod"), dtype)
    return CumProd.apply(a, axis=axis)


def _scan_args(a: Tensor, axis, dtype):
    if dtype is not None:
        a = a.astype(dtype)
    if axis is None or a.ndim == 0:
        if axis is not None:
            normalize_axis(axis, 0)
        return reshape(a, (-1,)), 0
    if not isinstance(axis, numbers.Integral):
        raise TypeError(f"a scan takes one axis (an int), got {axis!r}")
    return a, one_axis(axis, a.ndim, "a scan")


def prod(a: Tensor, axis=None, keepdims: bool = False, dtype=None, *, dim=None, keepdim=None) -> Tensor:
    """Product over ``axis`` (None: all), as ``numpy.prod``; the gradient is exact with zeros."""
    if dtype is not None:
        a = a.astype(dtype)
    axes = normalize_axis(axis_arg(axis, dim, "prod"), a.ndim)
    return Prod.apply(a, axes=axes, keepdims=keepdims_arg(keepdims, keepdim))


def diff(a: Tensor, n: int = 1, axis: int = -1, prepend=None, append=None) -> Tensor:
    """The n-th discrete difference along ``axis``, as ``numpy.diff`` (prepend/append included)."""
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, got {n}")
    if a.ndim == 0:
        raise ValueError("diff requires a tensor of at least one dimension")
    axis = one_axis(axis, a.ndim, "diff")
    parts = [_edge(v, a, axis) for v in (prepend,) if v is not None]
    parts += [a] + [_edge(v, a, axis) for v in (append,) if v is not None]
    out = concatenate(parts, axis=axis) if len(parts) > 1 else a
    lead = (slice(None),) * axis
    for _ in range(n):
        later, earlier = out[lead + (slice(1, None),)], out[lead + (slice(None, -1),)]
        # booleans have no subtraction: NumPy's diff of them is "not equal"
        out = later != earlier if out.dtype.kind == "b" else later - earlier
    return out


def _edge(value, a: Tensor, axis: int) -> Tensor:
    """A prepend/append value as a tensor that joins ``a`` along ``axis`` (a scalar is one slice)."""
    value = operand(value, a, "diff")
    if not isinstance(value, Tensor):
        value = Tensor._make(a.xp.asarray(value, dtype=a.dtype), a.device)
    if value.ndim == 0:
        shape = list(a.shape)
        shape[axis] = 1
        value = value.broadcast_to(tuple(shape))
    return value


def _sort_indices(a: Tensor, axis: int, descending: bool):
    """Stable sort order along ``axis`` (NaN last ascending, first descending, as PyTorch)."""
    xp, data = a.xp, a.data
    if not descending:
        return xp.argsort(data, axis=axis, kind="stable")
    order = xp.argsort(-data if data.dtype.kind in "fi" else -data.astype("int64"), axis=axis, kind="stable")
    nan_last = ~xp.isnan(xp.take_along_axis(data, order, axis=axis))
    return xp.take_along_axis(order, xp.argsort(nan_last, axis=axis, kind="stable"), axis=axis)


def _axis_or_dim(axis, dim, op: str):
    """``axis`` (default -1), or PyTorch's ``dim`` for it."""
    if dim is None:
        return axis
    if axis != -1:
        raise TypeError(f"{op}: give axis or dim (PyTorch's name for it), not both")
    return dim


def _flat_or_axis(a: Tensor, axis, op: str):
    if axis is None:
        return reshape(a, (-1,)), 0
    if a.ndim == 0:
        normalize_axis(axis, 0)
        return reshape(a, (1,)), 0
    if not isinstance(axis, numbers.Integral):
        raise TypeError(f"{op}: axis must be an int or None, got {axis!r}")
    return a, one_axis(axis, a.ndim, op)


_KINDS = ("quicksort", "mergesort", "heapsort", "stable")


def _check_kind(kind, axis, op: str) -> None:
    """NumPy's ``kind`` is a string; PyTorch's second argument is ``descending``, so a bool (or any
    other non-string) there is refused with both spellings rather than ignored."""
    if kind is None or kind in _KINDS:
        return
    if not isinstance(kind, str):
        raise TypeError(f"{op}({axis!r}, {kind!r}): PyTorch reads the argument after the axis as descending, NumPy "
                        f"as kind (a sort algorithm's name). Write {op}(dim={axis!r}, descending={kind!r}) for "
                        f"PyTorch's order, {op}(axis={axis!r}, kind='stable') for NumPy's")
    raise ValueError(f"{op}: kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r} (every sort is stable)")


def sort(a: Tensor, axis=-1, kind=None, order=None, *, dim=None, descending: bool | None = None,
         stable: bool | None = None) -> Tensor | ValuesIndices:
    """The sorted values along ``axis`` (None: flattened), as ``numpy.sort``; ties keep their
    order (stable), so each tied element gets the gradient of the place it lands in. With
    PyTorch's keywords (``dim=``, ``descending=``, ``stable=``) it is ``torch.sort``: ``(values,
    indices)`` (as ``dg.max(x, dim=1)``), so ``_, order = dg.sort(x, dim=1)`` means what it does there."""
    _check_kind(kind, axis, "sort")
    if order is not None:
        raise TypeError("sort: order= sorts structured arrays, which tensors are not")
    x, ax = _flat_or_axis(a, _axis_or_dim(axis, dim, "sort"), "sort")
    indices = _sort_indices(x, ax, bool(descending))
    values = take_along_axis(x, indices, ax) if x.shape[ax] else x
    if dim is None and descending is None and stable is None:
        return values
    return ValuesIndices(values, Tensor._make(indices, a.device))


def argsort(a: Tensor, axis=-1, kind=None, order=None, *, dim=None, descending: bool = False,
            stable: bool | None = None) -> Tensor:
    """Indices that sort ``a`` along ``axis`` (int64, stable, not differentiable), as ``numpy.argsort``;
    PyTorch's ``dim=``/``descending=`` are accepted."""
    _check_kind(kind, axis, "argsort")
    if order is not None:
        raise TypeError("argsort: order= sorts structured arrays, which tensors are not")
    x, ax = _flat_or_axis(a, _axis_or_dim(axis, dim, "argsort"), "argsort")
    return Tensor._make(_sort_indices(x, ax, descending), a.device)


def topk(a: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:  # noqa: A002
    """PyTorch's ``topk``: the ``k`` largest (``largest=False``: smallest) values along ``dim`` and
    their indices, largest first; the gradient goes to the elements picked."""
    x, ax = _flat_or_axis(a, dim, "topk") if a.ndim == 0 else (a, one_axis(dim, a.ndim, "topk"))
    size = x.shape[ax]
    if not isinstance(k, numbers.Integral) or not 0 <= k <= size:
        raise ValueError(f"topk: k={k!r} is out of range for dimension {dim} of size {size} (0 <= k <= {size})")
    order = _sort_indices(x, ax, descending=largest)
    picked = order[(slice(None),) * ax + (slice(0, int(k)),)]
    values = take_along_axis(x, picked, ax)
    if a.ndim == 0:
        values, picked = values.reshape(()), picked.reshape(())
    return ValuesIndices(values, Tensor._make(picked, a.device))


def sort_method(a: Tensor, *args, dim=None, descending=None, stable=None, axis=None, kind=None):
    """``Tensor.sort``: PyTorch's ``x.sort(dim=-1, descending=False)`` returns ``(values, indices)``;
    NumPy's ``x.sort(axis=-1)`` sorts the data in place and returns None (inside ``dg.no_grad()``
    for a tensor that requires grad). A call that could be either (no keyword) is an error that
    shows both spellings."""
    torch_style = dim is not None or descending is not None or stable is not None
    numpy_style = axis is not None or kind is not None
    if torch_style == numpy_style or args:
        raise TypeError("x.sort(...) means two things: PyTorch's returns (values, indices) and leaves x as it is, "
                        "NumPy's sorts x in place. Write x.sort(dim=-1) (or descending=) for PyTorch's, "
                        "x.sort(axis=-1) for NumPy's, or dg.sort(x, axis=-1) for NumPy's sorted copy")
    if numpy_style:
        _check_kind(kind, axis, "x.sort")
        _sort_in_place(a, -1 if axis is None else axis)
        return None
    dim = -1 if dim is None else dim  # descending= or stable= alone: PyTorch's last dimension
    x, ax = (reshape(a, (1,)), 0) if a.ndim == 0 else (a, one_axis(dim, a.ndim, "sort"))
    order = _sort_indices(x, ax, bool(descending))
    values = take_along_axis(x, order, ax)
    if a.ndim == 0:
        values, order = values.reshape(()), order.reshape(())
    return ValuesIndices(values, Tensor._make(order, a.device))


def _sort_in_place(a: Tensor, axis) -> None:
    if a.requires_grad and is_grad_enabled():
        raise RuntimeError("x.sort(axis=...) sorts in place (NumPy's), which a tensor that requires grad allows only "
                           "inside dg.no_grad(); for a sorted copy in the graph use dg.sort(x, axis=...)")
    if a.ndim:
        a.data.sort(axis=one_axis(axis, a.ndim, "sort"), kind="stable")
        a._bump_version()
