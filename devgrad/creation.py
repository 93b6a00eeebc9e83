"""Creating tensors: zeros, ones, full, arange, eye and their ``*_like`` forms."""

from __future__ import annotations

import numbers

import numpy as np

from devgrad.backend import default_device
from devgrad.backend import device as resolve_device
from devgrad.core import DEFAULT_FLOAT, Tensor, as_dtype


def shape_from_args(args: tuple) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` both mean shape (2, 3)."""
    if len(args) == 1 and isinstance(args[0], tuple | list):
        return tuple(args[0])
    return tuple(args)


def _creation_args(shape, device, dtype):
    shape = shape_from_args(shape)
    for s in shape:
        if not isinstance(s, numbers.Integral) or s < 0:
            raise ValueError(f"shape must be non-negative integers, got {shape}")
    dev = resolve_device(device) if device is not None else default_device()
    return tuple(int(s) for s in shape), dev, as_dtype(dtype) or np.dtype(DEFAULT_FLOAT)


def zeros(*shape, device=None, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``dg.zeros(2, 3)`` or ``dg.zeros((2, 3))``."""
    shape, dev, dt = _creation_args(shape, device, dtype)
    with dev.activate():
        data = dev.xp.zeros(shape, dtype=dt)
    return Tensor._make(data, dev).requires_grad_(requires_grad)


def ones(*shape, device=None, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    shape, dev, dt = _creation_args(shape, device, dtype)
    with dev.activate():
        data = dev.kernels.full(shape, 1, dt)
    return Tensor._make(data, dev).requires_grad_(requires_grad)


def full(shape, fill_value, device=None, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; without ``dtype``, the value's kind decides, as in NumPy
    and PyTorch: bool for a bool, int64 for an integer (never rounded to float32), else float32."""
    if dtype is None and isinstance(fill_value, bool | np.bool_):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, numbers.Integral):
        dtype = np.int64
    shape, dev, dt = _creation_args((shape,), device, dtype)
    with dev.activate():
        data = dev.kernels.full(shape, fill_value, dt)
    return Tensor._make(data, dev).requires_grad_(requires_grad)


def arange(start, stop=None, step=1, device=None, dtype=None) -> Tensor:
    """Evenly spaced values like ``numpy.arange`` (int64 for integer arguments)."""
    dev = resolve_device(device) if device is not None else default_device()
    host = np.arange(start, stop, step) if stop is not None else np.arange(start)
    dt = as_dtype(dtype)
    if dt is None and host.dtype.kind == "f":
        dt = np.dtype(DEFAULT_FLOAT)
    return Tensor._make(dev.put(host.astype(dt) if dt is not None else host), dev)


def eye(n: int, m: int | None = None, device=None, dtype=None) -> Tensor:
    """The identity matrix."""
    (n_, m_), dev, dt = _creation_args((n, n if m is None else m), device, dtype)
    with dev.activate():
        return Tensor._make(dev.xp.eye(n_, m_, dtype=dt), dev)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, device=device or t.device, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, device=device or t.device, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, device=device or t.device, dtype=dtype or t.dtype,
                requires_grad=requires_grad)


def linspace(start: float, stop: float, num: int = 50, device=None, dtype=None, *, steps=None) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` inclusive (PyTorch: ``steps``)."""
    count = num if steps is None else steps
    dev = resolve_device(device) if device is not None else default_device()
    dt = as_dtype(dtype) or np.dtype(DEFAULT_FLOAT)
    return Tensor._make(dev.put(np.linspace(start, stop, int(count)).astype(dt)), dev)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with a NumPy array (as ``torch.from_numpy``; ``dg.tensor`` copies)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    # a subclass (np.matrix, whose * is a matrix product) as a plain ndarray view of the same memory
    return Tensor._make(np.asarray(array), resolve_device("cpu"))


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, without a copy where none is needed (a Tensor or array already of that
    dtype and device is used as it is)."""
    if isinstance(data, Tensor) and (dtype is None or as_dtype(dtype) == data.dtype) and \
            (device is None or resolve_device(device) is data.device):
        return data
    dev = resolve_device(device) if device is not None else default_device()
    if isinstance(data, np.ndarray) and dev.holds(data) and (dtype is None or as_dtype(dtype) == data.dtype):
        return Tensor._make(np.asarray(data), dev)  # a subclass (np.matrix) as a plain ndarray view
    return Tensor(data, device=device, dtype=dtype)

