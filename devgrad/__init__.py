"""devgrad: a small, fast, honest reverse-mode autodiff library on NumPy (CPU) and CuPy (CUDA).

    import devgrad as dg
    x = dg.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == 2 * x
"""

import importlib as _importlib
import sys as _sys
from typing import TYPE_CHECKING

import numpy as _np

from devgrad.version import __version__

from devgrad.core import (
    Function, Tensor, as_dtype, enable_grad, grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled, tensor,
)
from devgrad.creation import (
    arange, as_tensor, eye, from_numpy, full, full_like, ones, ones_like, zeros, zeros_like,
)
from devgrad import ops
from devgrad import func
from devgrad import linalg
from devgrad.backend import (
    CaptureError, Device, DeviceError, cuda_available, cuda_unavailable_reason, default_device, device, devices,
    get_float32_matmul_precision, set_default_device, set_float32_matmul_precision,
)
from devgrad.gradcheck import GradcheckError, gradcheck, gradgradcheck
from devgrad.ops import (
    abs, add, argmax, argmin, broadcast_to, clip, concatenate, div, dot, equal, erf, exp, expand, expand_dims,
    flatten, greater, greater_equal, leaky_relu, less, less_equal, linear, log, log_sigmoid, log_softmax, logsumexp,
    matmul, max, maximum, mean, min, minimum, mul, neg, not_equal, pow, relu, reshape, sigmoid, softmax,
    softplus, sqrt, squeeze, stack, std, sub, sum, swapaxes, tanh, transpose, unsqueeze, var, where,
)
from devgrad.ops import (
    arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, cos, cosh, deg2rad, degrees, exp2, expm1, hypot,
    log1p, log2, log10, logaddexp, logaddexp2, rad2deg, radians, sin, sinc, sinh, tan,
)
from devgrad.ops import (
    cross, diag, diagflat, diagonal, einsum, identity, inner, kron, outer, tensordot, trace, tri, tril, triu, vdot,
)
from devgrad.ops import amax, amin, argsort, average, cumprod, cumsum, diff, median, nanmean, nansum, prod, sort, topk
from devgrad.ops import (
    absolute, cbrt, ceil, fabs, floor, fmax, fmin, fmod, mod, nan_to_num, negative, reciprocal, remainder, rint,
    round, sign, square, true_divide, trunc,
)
from devgrad.ops import (
    append, array, array_split, atleast_1d, atleast_2d, atleast_3d, column_stack, dsplit, dstack, flip, fliplr,
    flipud, hsplit, hstack, linspace, moveaxis, nonzero, pad, ravel, repeat, roll, rollaxis, rot90, select, split,
    take, take_along_axis, tile, vsplit, vstack,
)
from devgrad.random import manual_seed, rand, rand_like, randint, randn, randn_like
from devgrad.capture import CapturedStep
from devgrad.io import load, save
from devgrad.interop import from_dlpack

cat = concatenate  # PyTorch's name
float32 = _np.float32
float64 = _np.float64

# Subpackages a user is shown (``devgrad.nn.Linear``, ``devgrad.experiment.run(...)``,
# ``devgrad.viz.to_dot``) are reachable after ``import devgrad``, imported on first use so that
# ``import devgrad`` loads the autodiff core only (the pictures need subprocess for Graphviz; the
# runner YAML and its reports; layers and optimizers their kernels).
_LAZY_SUBMODULES = ("bench", "cli", "data", "experiment", "nn", "onnx", "optim", "viz")

if TYPE_CHECKING:
    from devgrad import data, experiment, nn, optim, viz

__all__ = [
    "CaptureError", "CapturedStep", "Device", "DeviceError", "Function", "GradcheckError", "Tensor", "__version__",
    "abs", "absolute", "add", "amax", "amin", "append", "arange", "arccos", "arccosh", "arcsin", "arcsinh",
    "arctan", "arctan2", "arctanh", "argmax", "argmin", "argsort", "array", "array_split", "as_dtype", "as_tensor",
    "atleast_1d", "atleast_2d", "atleast_3d", "average", "broadcast_to", "cat", "cbrt", "ceil", "clip",
    "column_stack", "concatenate", "cos", "cosh", "cross", "cuda_available", "cuda_unavailable_reason", "cumprod",
    "cumsum", "data", "default_device", "deg2rad", "degrees", "device", "devices", "diag", "diagflat", "diagonal",
    "diff", "div", "dot", "dsplit", "dstack", "einsum", "enable_grad", "equal", "erf", "exp", "exp2", "expand",
    "expand_dims", "experiment", "expm1", "eye", "fabs", "flatten", "flip", "fliplr", "flipud", "float32",
    "float64", "floor", "fmax", "fmin", "fmod", "from_dlpack", "from_numpy", "full", "full_like", "func",
    "get_float32_matmul_precision", "grad", "gradcheck", "gradgradcheck", "greater", "greater_equal", "hsplit",
    "hstack", "hypot", "identity", "inference_mode", "inner", "is_grad_enabled", "kron", "leaky_relu", "less",
    "less_equal", "linalg", "linear", "linspace", "load", "log", "log1p", "log2", "log10", "log_sigmoid",
    "log_softmax", "logaddexp", "logaddexp2", "logsumexp", "manual_seed", "matmul", "max", "maximum", "mean",
    "median", "min", "minimum", "mod", "moveaxis", "mul", "nan_to_num", "nanmean", "nansum", "neg", "negative",
    "nn", "no_grad", "nonzero", "not_equal", "ones", "ones_like", "ops", "optim", "outer", "pad", "pow", "prod",
    "rad2deg", "radians", "rand", "rand_like", "randint", "randn", "randn_like", "ravel", "reciprocal", "relu",
    "remainder", "repeat", "reshape", "rint", "roll", "rollaxis", "rot90", "round", "save", "select",
    "set_default_device", "set_float32_matmul_precision", "set_grad_enabled", "sigmoid", "sign", "sin", "sinc",
    "sinh", "softmax", "softplus", "sort", "split", "sqrt", "square", "squeeze", "stack", "std", "sub", "sum",
    "swapaxes", "take", "take_along_axis", "tan", "tanh", "tensor", "tensordot", "tile", "topk", "trace",
    "transpose", "tri", "tril", "triu", "true_divide", "trunc", "unsqueeze", "var", "vdot", "viz", "vsplit",
    "vstack", "where", "zeros", "zeros_like",
]

# The modules imported above are attributes of this package as a side effect of importing them;
# they are not its API (``devgrad.core`` and the rest stay importable, and reachable below).
for _module in ("backend", "capture", "core", "creation", "interop", "io", "random", "version"):
    globals().pop(_module, None)


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES or f"devgrad.{name}" in _sys.modules:
        return _importlib.import_module(f"devgrad.{name}")
    raise AttributeError(f"module 'devgrad' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})
