"""The activations of PyTorch's nn beyond the classic ones: GELU (exact and tanh), SiLU, ELU,
Hardtanh, Mish, softplus with beta and threshold; and erf, which exact GELU needs.

Each is written with differentiable ops, so the same formula gives every order of derivative,
and written to stay finite: ELU exponentiates only min(x, 0), softplus switches to x above its
threshold as PyTorch's does. At the kinks the gradients are PyTorch's (ELU's at 0 is alpha,
Hardtanh's at its bounds is 0).
"""

from __future__ import annotations

import math

import numpy as np

from devgrad.backend import register_kernel
from devgrad.core import Tensor
from devgrad.ops.activation import sigmoid, softplus, tanh
from devgrad.ops.elementwise import Where, exp
from devgrad.ops.exponential import expm1
from devgrad.ops.ufunc import Unary

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)
_math_erf = np.frompyfunc(math.erf, 1, 1)


def erf_cpu(x: np.ndarray) -> np.ndarray:
    """The error function on host arrays: SciPy's ufunc when SciPy is installed, else Python's
    math.erf per element (the same values to the last bit or two)."""
    try:
        from scipy.special import erf  # noqa: PLC0415 - optional: a faster ufunc than math.erf per element
    except ImportError:
        return np.asarray(_math_erf(x), dtype=np.float64).astype(x.dtype, copy=False)
    return erf(x)


register_kernel("erf", "cpu", erf_cpu)
register_kernel("erf", "cuda", "devgrad.ops._cuda_special")


class Erf(Unary):
    """erf(x) = 2/√π ∫₀ˣ exp(−t²) dt; its derivative 2/√π · exp(−x²)."""

    __slots__ = ()

    def forward(self, a):
        return self.device.kernels.erf(a)

    def derivative(self, x, y):
        return exp(-(x * x)) * _TWO_OVER_SQRT_PI


def erf(x: Tensor) -> Tensor:
    """The error function (PyTorch's ``torch.erf``; SciPy's ``scipy.special.erf``)."""
    return Erf.apply(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x·Φ(x), Φ the standard normal CDF (``approximate='none'``, PyTorch's default), or its
    tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (``approximate='tanh'``)."""
    if approximate == "none":
        return x * (erf(x * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5
    if approximate == "tanh":
        return x * (tanh((x + x * x * x * 0.044715) * _SQRT_TWO_OVER_PI) + 1.0) * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x: Tensor) -> Tensor:
    """x·sigmoid(x) (also called swish)."""
    return x * sigmoid(x)


def mish(x: Tensor) -> Tensor:
    """x·tanh(softplus(x))."""
    return x * tanh(softplus(x))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha·(exp(x) − 1) otherwise; the gradient at 0 is alpha (PyTorch's)."""
    negative = Where.apply(x, 0.0, cond=x.data <= 0)  # min(x, 0), whose gradient at 0 is 1: ELU's alpha there
    return Where.apply(x, expm1(negative) * float(alpha), cond=x.data > 0)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clamped to [min_val, max_val]; the gradient is 1 strictly inside and 0 at and beyond the
    bounds (PyTorch's, where clamp passes it at the bounds)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} is above max_val {max_val}")
    inside = (x.data > min_val) & (x.data < max_val)
    bounded = Tensor._make(x.xp.clip(x.data, min_val, max_val), x.device)
    return Where.apply(x, bounded, cond=inside)


def softplus_beta(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """PyTorch's ``F.softplus``: log(1 + exp(beta·x)) / beta, and x itself where beta·x > threshold."""
    if beta == 1.0 and threshold == math.inf:
        return softplus(x)
    if beta <= 0:
        raise ValueError(f"softplus: beta must be > 0, got {beta}")
    scaled = x * float(beta)
    smooth = softplus(scaled) if beta == 1.0 else softplus(scaled) * (1.0 / beta)
    return Where.apply(x, smooth, cond=scaled.data > threshold)
