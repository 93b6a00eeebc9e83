"""devgrad: a small, fast, honest reverse-mode autodiff library on NumPy (CPU) and CuPy (CUDA).

    import devgrad as dg
    x = dg.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == 2 * x
"""

# ruff: noqa: F405 - __all__'s names come from devgrad._api, star-imported for type checkers only
import importlib as _importlib
from typing import TYPE_CHECKING

from devgrad.version import __version__

# The names are imported on first use (PEP 562), all at once from devgrad._api: ``import
# devgrad`` and ``devgrad --help`` load neither NumPy nor the core. Subpackages a user is shown
# (``devgrad.nn.Linear``, ``devgrad.experiment.run(...)``, ``devgrad.viz.to_dot``) are imported
# when first reached, each alone (the pictures need subprocess for Graphviz; the runner YAML and
# its reports; layers and optimizers their kernels); so are the layers' own modules
# (``devgrad.core``, ``devgrad.backend``, ...), which are not the API but stay reachable.
_SUBMODULES = ("backend", "bench", "capture", "cli", "core", "creation", "data", "experiment", "func", "gradcheck",
               "interop", "io", "linalg", "nn", "onnx", "ops", "optim", "random", "version", "viz")

if TYPE_CHECKING:
    from devgrad import data, experiment, nn, optim, viz
    from devgrad._api import *  # noqa: F403 - what type checkers and IDEs read for every name

__all__ = [
    "CaptureError", "CapturedStep", "Device", "DeviceError", "Function", "GradcheckError", "Tensor", "__version__",
    "abs", "absolute", "add", "amax", "amin", "append", "arange", "arccos", "arccosh", "arcsin", "arcsinh",
    "arctan", "arctan2", "arctanh", "argmax", "argmin", "argsort", "array", "array_split", "as_dtype", "as_tensor",
    "atleast_1d", "atleast_2d", "atleast_3d", "average", "broadcast_to", "cat", "cbrt", "ceil", "clip",
    "column_stack", "concatenate", "cos", "cosh", "cross", "cuda_available", "cuda_unavailable_reason", "cumprod",
    "cumsum", "data", "default_device", "deg2rad", "degrees", "device", "devices", "diag", "diagflat", "diagonal",
    "diff", "div", "dot", "dsplit", "dstack", "einsum", "enable_grad", "equal", "erf", "exp", "exp2", "expand",
    "expand_dims", "experiment", "expm1", "eye", "fabs", "flatten", "flip", "fliplr", "flipud", "float32",
    "float64", "floor", "floor_divide", "fmax", "fmin", "fmod", "from_dlpack", "from_numpy", "full", "full_like",
    "func",
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


def __getattr__(name: str):
    if name in _SUBMODULES:
        return _importlib.import_module(f"devgrad.{name}")
    if name not in __all__:
        raise AttributeError(f"module 'devgrad' has no attribute {name!r}")
    names = vars(_importlib.import_module("devgrad._api"))
    globals().update({n: v for n, v in names.items() if not n.startswith("_")})  # found directly from now on
    return names[name]


def __dir__() -> list[str]:
    return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})
