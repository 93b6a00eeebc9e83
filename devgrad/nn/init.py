"""Weight initialisers.

Values are drawn on the host from a seeded NumPy Generator and then copied to the
parameter's device, so the same seed gives identical initial weights on CPU and GPU.
Each ``name_`` function fills a tensor in place and returns it; ``get(name)`` looks one
up by the names specs use (``xavier_uniform``, ``he_normal``, ...).
"""

from __future__ import annotations

import math

import numpy as np

from devgrad.random import get_generator
from devgrad.core import Tensor

GAINS = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0),
         "leaky_relu": math.sqrt(2.0 / (1 + 0.01**2)), "softplus": 1.0}


def calculate_gain(nonlinearity: str) -> float:
    """The recommended gain for an activation (as in Glorot/He): relu √2, tanh 5/3, others 1."""
    if nonlinearity not in GAINS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; known: {', '.join(GAINS)}")
    return GAINS[nonlinearity]


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out_features, in_features[, ...])."""
    if len(shape) < 2:
        n = int(shape[0]) if shape else 1
        return n, n
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def _fan(tensor: Tensor, mode: str, name: str) -> int:
    """fan_in or fan_out of ``tensor`` as ``mode`` says (any other mode is an error, not fan_out)."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fans(tensor.shape)[0 if mode == "fan_in" else 1]


def _fill(tensor: Tensor, host: np.ndarray) -> Tensor:
    tensor.data = tensor.device.put(host.astype(tensor.dtype))
    return tensor


def zeros_(tensor: Tensor, generator=None) -> Tensor:
    """All zeros (the lecture's bad idea for hidden layers: every unit stays identical)."""
    return _fill(tensor, np.zeros(tensor.shape))


def constant_(tensor: Tensor, value: float = 0.0, generator=None) -> Tensor:
    return _fill(tensor, np.full(tensor.shape, float(value)))


def ones_(tensor: Tensor, generator=None) -> Tensor:
    return constant_(tensor, 1.0)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    return _fill(tensor, get_generator(generator).normal(mean, std, tensor.shape))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    return _fill(tensor, get_generator(generator).uniform(a, b, tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot uniform: U(-a, a), a = gain·√(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator=generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot normal: N(0, gain²·2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(tensor.shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator=generator)


def kaiming_uniform_(tensor: Tensor, nonlinearity: str = "relu", mode: str = "fan_in", generator=None) -> Tensor:
    """He uniform: U(-b, b), b = gain·√(3 / fan)."""
    fan = _fan(tensor, mode, "kaiming_uniform_")
    bound = calculate_gain(nonlinearity) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(tensor: Tensor, nonlinearity: str = "relu", mode: str = "fan_in", generator=None) -> Tensor:
    """He normal: N(0, gain² / fan)."""
    fan = _fan(tensor, mode, "kaiming_normal_")
    return normal_(tensor, 0.0, calculate_gain(nonlinearity) / math.sqrt(fan), generator=generator)


def default_(tensor: Tensor, fan_in: int | None = None, generator=None) -> Tensor:
    """U(-1/√fan_in, 1/√fan_in): PyTorch's default for Linear weights and biases."""
    fan = fan_in if fan_in is not None else fans(tensor.shape)[0]
    bound = 1.0 / math.sqrt(fan) if fan > 0 else 0.0
    return uniform_(tensor, -bound, bound, generator=generator)


# Names for specs and Linear(init=...); glorot/he are the Keras names.
INITIALIZERS = {
    "zeros": zeros_, "ones": ones_, "normal": lambda t, generator=None: normal_(t, 0.0, 0.01, generator),
    "uniform": lambda t, generator=None: uniform_(t, -0.05, 0.05, generator),
    "xavier_uniform": xavier_uniform_, "xavier_normal": xavier_normal_,
    "glorot_uniform": xavier_uniform_, "glorot_normal": xavier_normal_,
    "kaiming_uniform": kaiming_uniform_, "kaiming_normal": kaiming_normal_,
    "he_uniform": kaiming_uniform_, "he_normal": kaiming_normal_,
    "default": default_,
}


def get(name: str):
    """The initialiser called ``name`` (see INITIALIZERS)."""
    if callable(name):
        return name
    if name not in INITIALIZERS:
        raise ValueError(f"unknown init {name!r}; choose one of {', '.join(sorted(INITIALIZERS))}")
    return INITIALIZERS[name]


# Names without the trailing underscore, as the public API lists them.
zeros, constant, ones, normal, uniform = zeros_, constant_, ones_, normal_, uniform_
xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal = (
    xavier_uniform_, xavier_normal_, kaiming_uniform_, kaiming_normal_)
glorot_uniform, glorot_normal, he_uniform, he_normal = (
    xavier_uniform_, xavier_normal_, kaiming_uniform_, kaiming_normal_)
