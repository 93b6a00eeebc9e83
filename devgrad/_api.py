"""The names of ``devgrad``'s top level, imported together: ``devgrad/__init__.py`` imports this
module when one of them is first used, so that ``import devgrad`` (and the command line's parser)
costs neither NumPy nor the autodiff core until a name needs them. Importing it also makes every
Tensor method available (the op layer registers them), as the top level promises."""

# ruff: noqa: F401 - every import here is re-exported: devgrad.__all__ lists the names
import numpy as _np

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
    absolute, cbrt, ceil, fabs, floor, floor_divide, fmax, fmin, fmod, mod, nan_to_num, negative, reciprocal,
    remainder, rint, round, sign, square, true_divide, trunc,
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
