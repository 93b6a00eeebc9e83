"""Seeded random tensors.

Random values are drawn on the host from a NumPy ``Generator`` and then sent to the
device, so the same seed gives the same numbers on the CPU and on every GPU.
"""

from __future__ import annotations

import numpy as np

from devgrad.backend import default_device
from devgrad.backend import device as resolve_device
from devgrad.core import DEFAULT_FLOAT, Tensor, as_dtype
from devgrad.creation import shape_from_args

_default = {"generator": np.random.default_rng()}


def manual_seed(seed: int) -> np.random.Generator:
    """Seed devgrad's default generator (used when no ``generator=`` is given)."""
    _default["generator"] = np.random.default_rng(seed)
    return _default["generator"]


def default_generator() -> np.random.Generator:
    return _default["generator"]


def get_generator(generator=None) -> np.random.Generator:
    """A NumPy Generator from None (the default one), an int seed, or a Generator."""
    if generator is None:
        return _default["generator"]
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, int | np.integer):
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be None, an int seed or numpy.random.Generator, got {type(generator).__name__}")


def _finish(host: np.ndarray, device, dtype, requires_grad: bool) -> Tensor:
    dev = resolve_device(device) if device is not None else default_device()
    dt = as_dtype(dtype) or np.dtype(DEFAULT_FLOAT)
    return Tensor._make(dev.put(host.astype(dt, copy=False)), dev).requires_grad_(requires_grad)


def randn(*shape, generator=None, device=None, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples: ``dg.randn(2, 3)`` or ``dg.randn((2, 3), generator=rng)``."""
    host = get_generator(generator).standard_normal(shape_from_args(shape))
    return _finish(host, device, dtype, requires_grad)


def rand(*shape, generator=None, device=None, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    host = get_generator(generator).random(shape_from_args(shape))
    return _finish(host, device, dtype, requires_grad)


def randint(low: int, high: int, shape, generator=None, device=None) -> Tensor:
    """Integers uniform in [low, high), int64."""
    host = get_generator(generator).integers(low, high, size=shape)
    return _finish(host, device, np.int64, False)


def randn_like(t: Tensor, generator=None) -> Tensor:
    return randn(t.shape, generator=generator, device=t.device, dtype=t.dtype)


def rand_like(t: Tensor, generator=None) -> Tensor:
    return rand(t.shape, generator=generator, device=t.device, dtype=t.dtype)
