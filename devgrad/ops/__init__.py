"""The op set, as functions, and the Tensor operators and methods that delegate to them."""

from __future__ import annotations

import copyreg
import operator

import numpy as np

from devgrad.backend import DeviceError
from devgrad.core import Tensor, is_grad_enabled, register_tensor_methods
from devgrad.cpu_capture import traced_if_recording
from devgrad.ops._util import axis_arg, keepdims_arg, operand
from devgrad.ops.activation import (
    leaky_relu, log_sigmoid, log_softmax, relu, sigmoid, softmax, softplus, tanh,
)
from devgrad.ops.elementwise import (
    abs, add, cast, clip, div, exp, log, maximum, minimum, mul, neg, sqrt, sub,
)
from devgrad.ops.exponential import exp2, expm1, log1p, log2, log10, logaddexp, logaddexp2
from devgrad.ops.power import cbrt, pow, reciprocal, square
from devgrad.ops.linalg import dot, linear, matmul
from devgrad.ops.piecewise import (
    ceil, fabs, floor, floor_divide, fmax, fmin, fmod, mod, nan_to_num, remainder, rint, round, sign, trunc,
)
from devgrad.ops.reduce import logsumexp, max, max_method, mean, min, min_method, std, sum, var
from devgrad.ops.activation_torch import erf
from devgrad.ops.torch_inplace import INPLACE_METHODS
from devgrad.ops.joining import (
    array, array_split, column_stack, dsplit, dstack, hsplit, hstack, linspace, nonzero, select, split, vsplit, vstack,
    where,
)
from devgrad.ops.layout import (
    append, atleast_1d, atleast_2d, atleast_3d, flip, fliplr, flipud, moveaxis, pad, ravel, repeat, roll, rollaxis,
    rot90, take, take_along_axis, tile,
)
from devgrad.ops.torch_methods import (
    add_method, allclose, bmm, chunk, contiguous, div_method, expand_as, gather, index_select, isclose, masked_fill,
    norm, reciprocal_method, sub_method, type_as, unique,
)
from devgrad.ops.torch_methods import nonzero as nonzero_method
from devgrad.ops.torch_methods import repeat as repeat_method
from devgrad.ops.torch_methods import split as split_method
from devgrad.ops.torch_methods import tile as tile_method
from devgrad.ops.torch_methods import flatten as torch_flatten
from devgrad.ops.matrix import diag, diagflat, diagonal, identity, tri, tril, trace, triu
from devgrad.ops.products import cross, einsum, inner, kron, outer, tensordot, vdot
from devgrad.ops.scan import argsort, cumprod, cumsum, diff, prod, sort, sort_method, topk
from devgrad.ops.statistics import amax, amin, average, median, nanmean, nansum
from devgrad.ops.assign import assign_in_graph, setitem
from devgrad.ops.shape import (
    broadcast_to, concatenate, expand, expand_dims, flatten, getitem, permute, reshape, squeeze, stack,
    swapaxes, to, transpose, transpose_method, unsqueeze,
)
from devgrad.ops.trig import (
    arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, cos, cosh, deg2rad, degrees, hypot, rad2deg, radians,
    sin, sinc, sinh, tan,
)


def _compare(fn, name):
    def compare(a, b) -> Tensor:
        other = operand(b, a, name)
        if isinstance(other, Tensor):
            if other.device is not a.device:
                raise DeviceError(f"{name}: tensors are on different devices, {a.device} and {other.device}")
            other = other.data
        with a.device.activate():
            return Tensor._make(fn(a.data, other), a.device)

    compare.__name__ = name
    compare.__doc__ = f"Elementwise {name} as a boolean tensor (not differentiable)."
    return compare


less = _compare(operator.lt, "less")
less_equal = _compare(operator.le, "less_equal")
greater = _compare(operator.gt, "greater")
greater_equal = _compare(operator.ge, "greater_equal")
equal = _compare(operator.eq, "equal")
not_equal = _compare(operator.ne, "not_equal")


def _any(a: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    return Tensor._make(a.xp.any(a.data, axis=axis_arg(axis, dim, "any"), keepdims=keepdims_arg(keepdims, keepdim)),
                        a.device)


def _all(a: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    return Tensor._make(a.xp.all(a.data, axis=axis_arg(axis, dim, "all"), keepdims=keepdims_arg(keepdims, keepdim)),
                        a.device)


def argmax(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Indices of the maxima (int64, not differentiable)."""
    return Tensor._make(a.xp.argmax(a.data, axis=axis_arg(axis, dim, "argmax"),
                                    keepdims=keepdims_arg(keepdims, keepdim)), a.device)


def argmin(a: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Indices of the minima (int64, not differentiable)."""
    return Tensor._make(a.xp.argmin(a.data, axis=axis_arg(axis, dim, "argmin"),
                                    keepdims=keepdims_arg(keepdims, keepdim)), a.device)


# NumPy's other names of existing ops
absolute = abs
negative = neg
true_divide = div


# -- PyTorch spellings of NumPy-style methods (NumPy's names stay primary) --------------------

def _view(a: Tensor, *shape) -> Tensor:
    return reshape(a, *shape)


def _t(a: Tensor) -> Tensor:
    """PyTorch's .t(): the transpose of a 2-D tensor (a 0-D or 1-D tensor as it is)."""
    if a.ndim > 2:
        raise ValueError(f"t() expects a tensor with at most 2 dimensions, got {a.ndim}; use .transpose(...)")
    return a if a.ndim < 2 else transpose(a)


def _clamp(a: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    return clip(a, min, max)


def _cast_to(dtype):
    def method(a: Tensor) -> Tensor:
        return cast(a, dtype)

    method.__name__ = f"to_{np.dtype(dtype).name}"
    return method


def _zero_(a: Tensor) -> Tensor:
    """Fill with zeros in place (inside no_grad for a tensor that requires grad, as any in-place op)."""
    if a.requires_grad and is_grad_enabled():
        raise RuntimeError("zero_() on a tensor that requires grad while the graph is being recorded: do it "
                           "inside dg.no_grad()")
    traced_if_recording(a.data)[...] = 0  # a step recorded for replay repeats the write
    a._bump_version()
    return a


# Tensor's operators and op methods: each is the op function above (core imports no op).
# devgrad/core/_tensor.pyi declares them on Tensor for type checkers and IDEs (tests/support/core_stub.py writes it).
TENSOR_METHODS = {
    "__add__": add, "__radd__": lambda a, b: add(b, a),
    "__sub__": sub, "__rsub__": lambda a, b: sub(b, a),
    "__mul__": mul, "__rmul__": lambda a, b: mul(b, a),
    "__truediv__": div, "__rtruediv__": lambda a, b: div(b, a),
    "__pow__": pow, "__rpow__": lambda a, b: pow(b, a),
    "__matmul__": matmul, "__rmatmul__": lambda a, b: matmul(b, a),
    "__neg__": neg, "__pos__": lambda a: a, "__abs__": abs,
    "__mod__": mod, "__rmod__": lambda a, b: mod(b, a),
    "__floordiv__": floor_divide, "__rfloordiv__": lambda a, b: floor_divide(b, a),
    "__getitem__": getitem, "__setitem__": setitem, "_assign_in_graph": assign_in_graph, "to": to, "astype": cast,
    "__lt__": less, "__le__": less_equal, "__gt__": greater, "__ge__": greater_equal,
    "__eq__": equal, "__ne__": not_equal,
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "clip": clip,
    "sum": sum, "mean": mean, "max": max_method, "min": min_method, "logsumexp": logsumexp, "var": var, "std": std,
    "relu": relu, "leaky_relu": leaky_relu, "sigmoid": sigmoid, "tanh": tanh, "softplus": softplus,
    "log_sigmoid": log_sigmoid, "softmax": softmax, "log_softmax": log_softmax,
    "reshape": reshape, "transpose": transpose_method, "permute": permute, "swapaxes": swapaxes,
    "broadcast_to": broadcast_to,
    "expand": expand, "squeeze": squeeze, "unsqueeze": unsqueeze,
    "matmul": matmul, "argmax": argmax, "argmin": argmin, "any": _any, "all": _all,
    "maximum": maximum, "minimum": minimum,
    "trace": trace, "diagonal": diagonal, "dot": dot, "outer": outer, "inner": inner, "kron": kron, "tril": tril,
    "triu": triu, "diag": diag, "amax": amax, "amin": amin, "nansum": nansum, "nanmean": nanmean,
    "prod": prod, "cumsum": cumsum, "cumprod": cumprod, "sort": sort_method, "argsort": argsort, "topk": topk,
    # PyTorch's spellings
    "view": _view, "t": _t, "pow": pow, "mm": matmul, "clamp": _clamp, "long": _cast_to(np.int64),
    "int": _cast_to(np.int32), "bool": _cast_to(np.bool_), "zero_": _zero_,
    # NumPy's functions that PyTorch also has as methods (x.sin(), x.log1p(), x.hypot(y), ...)
    "sin": sin, "cos": cos, "tan": tan, "arcsin": arcsin, "arccos": arccos, "arctan": arctan, "arctan2": arctan2,
    "sinh": sinh, "cosh": cosh, "arcsinh": arcsinh, "arccosh": arccosh, "arctanh": arctanh, "sinc": sinc,
    "deg2rad": deg2rad, "rad2deg": rad2deg, "hypot": hypot, "exp2": exp2, "expm1": expm1, "log1p": log1p,
    "log2": log2, "log10": log10, "logaddexp": logaddexp, "logaddexp2": logaddexp2,
    "asin": arcsin, "acos": arccos, "atan": arctan, "atan2": arctan2, "asinh": arcsinh, "acosh": arccosh,
    "atanh": arctanh,
    # PyTorch's methods whose names NumPy's arrays lack or give another meaning (torch_methods.py)
    "gather": gather, "index_select": index_select, "masked_fill": masked_fill, "chunk": chunk,
    "split": split_method, "repeat": repeat_method, "tile": tile_method, "norm": norm, "nonzero": nonzero_method,
    "unique": unique, "isclose": isclose,
    "allclose": allclose, "bmm": bmm, "expand_as": expand_as, "type_as": type_as, "contiguous": contiguous,
    "erf": erf, "flatten": torch_flatten, "add": add_method, "sub": sub_method, "mul": mul, "div": div_method,
    "neg": neg,
    **INPLACE_METHODS,
    "round": round, "sign": sign, "floor": floor, "ceil": ceil, "trunc": trunc, "fmod": fmod, "remainder": remainder,
    "floor_divide": floor_divide,
    "fmax": fmax, "fmin": fmin, "nan_to_num": nan_to_num, "square": square, "reciprocal": reciprocal_method,
    "absolute": abs, "negative": neg, "true_divide": div,
    "ravel": ravel, "take": take, "flip": flip, "roll": roll, "rot90": rot90, "moveaxis": moveaxis,
    "take_along_axis": take_along_axis,
}
register_tensor_methods(TENSOR_METHODS)


def _rebuild_tensor(cls: type[Tensor], slots: dict) -> Tensor:
    """A pickled Tensor, rebuilt in a process where this module (its methods) is imported first:
    ``import devgrad`` loads the op layer on first use, so unpickling must not rely on it."""
    t = cls.__new__(cls)
    for name, value in slots.items():
        setattr(t, name, value)
    return t


def _reduce_tensor(t: Tensor):
    """Pickle a Tensor as its slots, rebuilt by ``_rebuild_tensor`` (importing the op layer)."""
    state = t.__reduce_ex__(2)[2]  # (None, the slots' values): a Tensor has no __dict__
    slots: dict = state[1]  # type: ignore[assignment]
    # which tensor a view was taken from is a weak reference, meaningless in another process
    return _rebuild_tensor, (type(t), {k: v for k, v in slots.items() if k != "_view_of"})


copyreg.pickle(Tensor, _reduce_tensor)

__all__ = [
    "abs", "absolute", "add", "amax", "amin", "append", "arccos", "arccosh", "arcsin", "arcsinh", "arctan",
    "arctan2", "arctanh", "argmax", "argmin", "argsort", "array", "array_split", "atleast_1d", "atleast_2d",
    "atleast_3d", "average", "broadcast_to", "cast", "cbrt", "ceil", "clip", "column_stack", "concatenate", "cos",
    "cosh", "cross", "cumprod", "cumsum", "deg2rad", "degrees", "diag", "diagflat", "diagonal", "diff", "div",
    "dot", "dsplit", "dstack", "einsum", "equal", "erf", "exp", "exp2", "expand", "expand_dims", "expm1", "fabs",
    "flatten", "flip", "fliplr", "flipud", "floor", "floor_divide", "fmax", "fmin", "fmod", "getitem", "greater",
    "greater_equal",
    "hsplit", "hstack", "hypot", "identity", "inner", "kron", "leaky_relu", "less", "less_equal", "linear",
    "linspace", "log", "log1p", "log2", "log10", "log_sigmoid", "log_softmax", "logaddexp", "logaddexp2",
    "logsumexp", "matmul", "max", "maximum", "mean", "median", "min", "minimum", "mod", "moveaxis", "mul",
    "nan_to_num", "nanmean", "nansum", "neg", "negative", "nonzero", "not_equal", "outer", "pad", "permute", "pow",
    "prod", "rad2deg", "radians", "ravel", "reciprocal", "relu", "remainder", "repeat", "reshape", "rint", "roll",
    "rollaxis", "rot90", "round", "select", "sigmoid", "sign", "sin", "sinc", "sinh", "softmax", "softplus", "sort",
    "split", "sqrt", "square", "squeeze", "stack", "std", "sub", "sum", "swapaxes", "take", "take_along_axis",
    "tan", "tanh", "tensordot", "tile", "topk", "trace", "transpose", "tri", "tril", "triu", "true_divide", "trunc",
    "unsqueeze", "var", "vdot", "vsplit", "vstack", "where",
]
