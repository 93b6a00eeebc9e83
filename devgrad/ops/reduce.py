"""Reductions over axes: sum, mean, max, min, logsumexp (NumPy's axis/keepdims)."""

from __future__ import annotations

import math
import numbers
import warnings


from devgrad.core import Function, Tensor
from devgrad.ops._util import axis_arg, keepdims_arg, keepdims_shape, normalize_axis, one_axis
from devgrad.ops.elementwise import link_zero, select


class MinMax(tuple):
    """``(values, indices)`` of ``max``/``min`` with ``dim=``, ``sort``, ``topk`` and
    ``median(dim=)`` (PyTorch's named tuple)."""

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
        return self.for_kind(g, _broadcast, _filled)(g, self.in_shape, self.device.xp)


def _broadcast(values: Tensor, shape: tuple, xp) -> Tensor:
    """``values`` broadcast to ``shape``: the op, differentiable again."""
    return values.broadcast_to(shape)


def _filled(values, shape: tuple, xp):
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
    """Maximum over axes; tied maxima share the gradient evenly (like ``torch.amax``); a NaN
    maximum gives NaN gradients (no element equals it), as there."""

    __slots__ = ()
    save_inputs = True
    save_output = True
    array_backward = True
    pick = "max"

    def forward(self, a, axis=None, keepdims=False):
        axes = self._setup(a, axis, keepdims)
        if any(a.shape[ax] == 0 for ax in axes):  # an empty slice has no extreme (NumPy's rule too)
            raise ValueError(f"{self.pick}() of an empty tensor has no value")
        return getattr(self.device.xp, self.pick)(a, axis=axes, keepdims=keepdims)

    def backward(self, g):
        xp = self.device.xp
        x = self.inputs[0].data
        kshape = keepdims_shape(self.in_shape, self.axes)
        winners = (x == self.out_data.reshape(kshape)).astype(g.dtype)
        winners /= xp.sum(winners, axis=self.axes, keepdims=True)
        return link_zero(self._expand(g) * self.constant(g, winners), self.inputs[0])


class Min(Max):
    __slots__ = ()
    pick = "min"


class IndexedExtreme(Function):
    """The values of ``max``/``min`` with PyTorch's ``dim=``: a[index] along one axis. The whole
    gradient goes to the index returned (PyTorch's rule at ties), selected, not multiplied."""

    __slots__ = ("chosen", "keep_shape")
    save_inputs = True
    array_backward = True

    def forward(self, a, index, axis, keepdims):
        xp = self.device.xp
        picked = xp.expand_dims(index, axis) if not keepdims else index
        self.keep_shape = picked.shape
        positions = xp.arange(a.shape[axis]).reshape([-1 if i == axis else 1 for i in range(a.ndim)])
        self.chosen = positions == picked  # True at the returned index of each slice
        out = xp.take_along_axis(a, picked, axis)
        return out if keepdims else out.reshape(index.shape)

    def backward(self, g):
        g = g.reshape(self.keep_shape)
        return link_zero(select(g, self.chosen, g, 0.0, self.device.xp), self.inputs[0])


class LogSumExp(_Reduce):
    """log(sum(exp(a))) over axes, computed with the max shifted out (no overflow); -inf over an
    empty or all -inf slice."""

    __slots__ = ()
    save_inputs = True
    save_output = True

    def forward(self, a, axis=None, keepdims=False):
        xp = self.device.xp
        axes = self._setup(a, axis, keepdims)
        if a.size == 0:  # log of an empty sum: -inf (no maximum to shift by)
            out = xp.full(keepdims_shape(a.shape, axes), -math.inf, dtype=a.dtype)
        else:
            m = xp.max(a, axis=axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)
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


def max(a: Tensor, axis=None, *extra, keepdims: bool = False, dim=None, keepdim=None):  # noqa: A001
    """Maximum over ``axis`` (NumPy: the values). With PyTorch's ``dim=`` or ``keepdim=`` it returns
    ``(values, indices)`` as PyTorch does; options after the axis are keywords."""
    return _extreme(Max, "argmax", a, axis, extra, keepdims, dim, keepdim)


def min(a: Tensor, axis=None, *extra, keepdims: bool = False, dim=None, keepdim=None):  # noqa: A001
    """Minimum over ``axis`` (NumPy: the values). With PyTorch's ``dim=`` or ``keepdim=`` it returns
    ``(values, indices)`` as PyTorch does; options after the axis are keywords."""
    return _extreme(Min, "argmin", a, axis, extra, keepdims, dim, keepdim)


def max_method(a: Tensor, *args, axis=None, keepdims: bool | None = None, dim=None, keepdim=None):
    """``Tensor.max``: :func:`max`, except that one axis given alone by position (``x.max(1)``),
    which PyTorch reads as ``(values, indices)`` and NumPy as the values, is an error that shows
    both spellings (``_, pred = out.max(1)`` would otherwise unpack the values)."""
    _refuse_bare_axis("max", args, keepdims, dim, keepdim)
    return max(a, *args, **_axis_keywords(axis), keepdims=bool(keepdims), dim=dim, keepdim=keepdim)


def min_method(a: Tensor, *args, axis=None, keepdims: bool | None = None, dim=None, keepdim=None):
    """``Tensor.min``: :func:`min`, with ``x.min(1)`` refused as in :func:`max_method`."""
    _refuse_bare_axis("min", args, keepdims, dim, keepdim)
    return min(a, *args, **_axis_keywords(axis), keepdims=bool(keepdims), dim=dim, keepdim=keepdim)


def _axis_keywords(axis) -> dict:
    return {} if axis is None else {"axis": axis}


def _refuse_bare_axis(op: str, args: tuple, keepdims, dim, keepdim) -> None:
    if (len(args) == 1 and isinstance(args[0], numbers.Integral) and not isinstance(args[0], bool)
            and keepdims is None and dim is None and keepdim is None):
        ax = int(args[0])
        raise TypeError(f"x.{op}({ax}) means two things: PyTorch's returns (values, indices) along dim {ax}, "
                        f"NumPy's the values alone. Write x.{op}(dim={ax}) for PyTorch's (_, pred = out.{op}(dim="
                        f"{ax})), x.{op}(axis={ax}) or x.a{op}({ax}) for the values, x.arg{op}({ax}) for the indices")


def _refuse_ambiguous(op: str, axis, extra: tuple) -> None:
    """PyTorch's ``max(x, y)`` (elementwise) and ``x.max(1, True)`` (keepdim) would silently mean
    something else here: refused, with both spellings."""
    if isinstance(axis, Tensor) or (hasattr(axis, "shape") and not isinstance(axis, numbers.Integral)):
        raise TypeError(f"{op}(x, y) with a tensor or array y: devgrad's {op} reduces x over an axis (NumPy's "
                        f"{op}); for PyTorch's elementwise torch.{op}(x, y) write dg.{op}imum(x, y) or "
                        f"x.{op}imum(y)")
    _refuse_after_axis(op, axis, extra, "as keepdim and returns (values, indices)",
                       f"x.{op}(dim={axis!r}, keepdim=True) for PyTorch's (values, indices), "
                       f"x.{op}(axis={axis!r}, keepdims=True) for the values (NumPy's)")


def _refuse_after_axis(op: str, axis, extra: tuple, torch_reads: str, write: str) -> None:
    """``x.op(axis, v)``: a positional ``v`` PyTorch reads otherwise than devgrad, refused with
    what PyTorch reads it ``as`` and the spellings to ``write`` instead."""
    if extra:
        spelled = ", ".join(repr(v) for v in (axis, *extra))
        raise TypeError(f"x.{op}({spelled}): PyTorch reads the argument after the axis {torch_reads}; devgrad "
                        f"takes it by keyword. Write {write}")


def _extreme(cls, arg: str, a: Tensor, axis, extra: tuple, keepdims, dim, keepdim):
    _refuse_ambiguous(cls.pick, axis, extra)
    if dim is None and keepdim is not None and isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        dim, axis = axis, None  # keepdim= is PyTorch's keyword: x.max(1, keepdim=True) is PyTorch's call
    keep = keepdims_arg(keepdims, keepdim)
    if dim is None:
        return cls.apply(a, axis=axis, keepdims=keep)
    if axis is not None:
        raise TypeError(f"{cls.pick}: give axis or dim (PyTorch's name for it), not both")
    if not isinstance(dim, numbers.Integral):
        raise TypeError(f"{cls.pick}: dim= takes one axis and returns (values, indices), as in PyTorch; "
                        f"for the {cls.pick} over several axes use axis={dim!r}")
    if a.ndim == 0:  # PyTorch: dim 0 or -1 of a 0-d tensor is the tensor itself, at index 0
        values, indices = _extreme(cls, arg, a.reshape(1), None, (), False, 0, False)
        normalize_axis(dim, 0)  # the same range check as any axis
        return MinMax(values, indices)
    axis = one_axis(dim, a.ndim, cls.pick)
    index = getattr(a.xp, arg)(a.data, axis=axis, keepdims=keep)
    values = IndexedExtreme.apply(a, index=index, axis=axis, keepdims=keep)
    return MinMax(values, Tensor._make(index, a.device))


def logsumexp(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """log(sum(exp(a), axis)), stable for large |a|. (``dim``/``keepdim``: PyTorch's names.)"""
    return LogSumExp.apply(a, axis=axis_arg(axis, dim, "logsumexp"), keepdims=keepdims_arg(keepdims, keepdim))


def _ddof(ddof, unbiased, correction, op: str, torch_style: bool) -> int:
    """NumPy's ``ddof`` from it or PyTorch's ``unbiased=`` / ``correction=`` (one of the three);
    none given: PyTorch's unbiased default where PyTorch's keywords (dim=, keepdim=) were used,
    NumPy's ddof=0 otherwise."""
    given = [name for name, v in (("ddof", ddof), ("unbiased", unbiased), ("correction", correction)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"{op}: give one of ddof, unbiased (PyTorch) or correction (PyTorch), not several")
    if unbiased is not None:
        return 1 if unbiased else 0
    if correction is not None:
        return correction
    if ddof is not None:
        return ddof
    return 1 if torch_style else 0


# std/var's dim when not given: dim=None, given, is PyTorch's call over every axis (unbiased), as
# a function passing its own dim=None on expects
_NO_DIM = object()


def _refuse_positional_options(op: str, axis, extra: tuple) -> None:
    """``x.std(1, True)``: PyTorch's second argument is ``unbiased``, NumPy's ``dtype``; refused."""
    _refuse_after_axis(op, axis, extra, "as unbiased, NumPy as dtype",
                       f"x.{op}(dim={axis!r}) for PyTorch's unbiased statistic (or unbiased=False / correction=0), "
                       f"x.{op}(axis={axis!r}) for NumPy's population statistic (keepdims=, ddof= by keyword)")


def var(a: Tensor, axis=None, *extra, keepdims: bool = False, ddof: int | None = None, dim=_NO_DIM, keepdim=None,
        unbiased: bool | None = None, correction=None) -> Tensor:
    """Variance over ``axis``: NumPy's, ddof=0 (the population variance) by default, also as a
    method; with PyTorch's ``dim=`` (``dim=None`` too) or ``keepdim=`` PyTorch's, unbiased
    (correction=1) by default.
    ``unbiased=True`` is ddof=1, ``correction`` is ddof; options after the axis are keywords."""
    return _variance_of_call("var", a, axis, extra, keepdims, ddof, dim, keepdim, unbiased, correction)


def std(a: Tensor, axis=None, *extra, keepdims: bool = False, ddof: int | None = None, dim=_NO_DIM, keepdim=None,
        unbiased: bool | None = None, correction=None) -> Tensor:
    """Standard deviation over ``axis``: NumPy's (ddof=0) by default, PyTorch's (unbiased) with
    ``dim=``/``keepdim=``; ``unbiased``/``correction`` as in :func:`var`."""
    return StdRoot.apply(_variance_of_call("std", a, axis, extra, keepdims, ddof, dim, keepdim, unbiased,
                                           correction))


def _variance_of_call(op: str, a: Tensor, axis, extra: tuple, keepdims, ddof, dim, keepdim, unbiased,
                      correction) -> Tensor:
    """The variance ``op`` (var, or std before its root) asks for: its arguments read as NumPy's or,
    with ``dim=``/``keepdim=``, PyTorch's call."""
    _refuse_positional_options(op, axis, extra)
    torch_style = dim is not _NO_DIM or keepdim is not None
    dim = None if dim is _NO_DIM else dim
    ddof = _ddof(ddof, unbiased, correction, op, torch_style)
    return _variance(a, axis_arg(axis, dim, op), keepdims_arg(keepdims, keepdim), ddof)


def _variance(a: Tensor, axis, keepdims: bool, ddof) -> Tensor:
    axes = normalize_axis(axis, a.ndim)
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
                  "or NaN", RuntimeWarning, stacklevel=4)
    return squares * math.inf


class StdRoot(Function):
    """The square root that turns a variance into a standard deviation. Its gradient is 0 where the
    deviation is 0 (every element equal), PyTorch's convention for std, instead of inf·0 = NaN:
    selected (an infinite g there gives 0), with the denominator made safe first, so no inf is
    formed."""

    __slots__ = ()
    save_output = True
    array_backward = True

    def forward(self, v):
        return self.device.xp.sqrt(v)

    def backward(self, g):
        zero = self.out_data == 0
        safe = self.result(g) + self.constant(g, zero.astype(self.out_data.dtype))
        return select(g, zero, 0.0, g / (safe * 2.0), self.device.xp)
