"""Tensor: an array on a device plus its link into the autograd graph.

Operators and methods delegate to the op functions in ``devgrad.ops``; this file holds
only construction, data movement and the Python protocol.
"""

from __future__ import annotations

import numbers

import numpy as np

from devgrad import autograd
from devgrad.backend import Device, DeviceError, default_device, device_of, is_device_array
from devgrad.backend import device as resolve_device

DEFAULT_FLOAT = np.float32

_DTYPE_ALIASES = {
    "float": np.float32, "float32": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "int": np.int64, "int64": np.int64,
    "int32": np.int32, "long": np.int64, "bool": np.bool_, "uint8": np.uint8,
}


def as_dtype(dtype) -> np.dtype | None:
    """Normalise a dtype given as a string, NumPy type or dtype (None stays None)."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        key = dtype.strip().lower()
        if key not in _DTYPE_ALIASES:
            raise TypeError(f"unknown dtype {dtype!r}: use one of {', '.join(sorted(_DTYPE_ALIASES))}")
        return np.dtype(_DTYPE_ALIASES[key])
    return np.dtype(dtype)


class Tensor:
    """An n-dimensional array on a device (NumPy on CPU, CuPy on CUDA) that records its graph.

    Create one with ``dg.tensor(data, requires_grad=..., device=..., dtype=...)``.
    """

    __slots__ = ("data", "device", "requires_grad", "grad", "_ctx", "name", "__weakref__")

    # Make ``ndarray * Tensor`` call Tensor.__rmul__ instead of NumPy broadcasting over it.
    __array_priority__ = 1000
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, device=None, dtype=None, name: str | None = None):
        dev, array = _to_array(data, device, dtype)
        self.data = array
        self.device = dev
        self.grad = None
        self._ctx = None
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, device: Device, ctx=None):
        """Internal fast constructor: wraps an array of ``device`` without checks."""
        t = object.__new__(cls)
        t.data = data
        t.device = device
        t.grad = None
        t._ctx = ctx
        t.name = None
        t.requires_grad = ctx is not None
        return t

    # -- properties ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by an op on graph tensors."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The op node that produced this tensor (None for leaves)."""
        return self._ctx

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        return self.transpose()

    @property
    def xp(self):
        """The array module of this tensor's device (numpy or cupy)."""
        return self.device.xp

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Mark a leaf tensor as needing gradients (in place); returns self."""
        if self._ctx is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach() instead")
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require grad, this one is {self.data.dtype}; "
                            "create it with dtype='float32' (or float64)")
        self.requires_grad = bool(requires_grad)
        return self

    # -- data movement -------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """A host NumPy copy of the data, from any device (never a view of graph memory)."""
        return np.array(self.device.to_host(self.data), copy=True)

    def item(self):
        """The single value of a one-element tensor as a Python number (syncs on a GPU)."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.device.to_host(self.data).item()

    def tolist(self):
        return self.device.to_host(self.data).tolist()

    def to(self, device=None, dtype=None) -> Tensor:
        """This tensor on another device and/or dtype; differentiable, no-op when nothing changes."""
        out = self
        if dtype is not None and as_dtype(dtype) != self.dtype:
            out = out.astype(dtype)
        if device is not None:
            dev = resolve_device(device)
            if dev is not out.device:
                from devgrad.ops.shape import to_device

                out = to_device(out, dev)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Tensor:
        return self.to(f"cuda:{index}")

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the graph (requires_grad=False)."""
        return Tensor._make(self.data, self.device)

    def clone(self) -> Tensor:
        """A copy of the data, still connected to the graph."""
        return self * 1

    def astype(self, dtype) -> Tensor:
        from devgrad.ops.elementwise import cast

        return cast(self, dtype)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    # -- autograd ------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        ``grad`` may be omitted for one-element tensors. The graph's saved values are freed
        afterwards unless ``retain_graph=True`` (default: the value of ``create_graph``).
        """
        autograd.run_backward([self], [grad], retain_graph=retain_graph, create_graph=create_graph)

    def zero_grad(self) -> None:
        self.grad = None

    # -- Python protocol -----------------------------------------------------------------
    def __repr__(self) -> str:
        body = np.array2string(self.device.to_host(self.data), separator=", ", precision=4,
                               prefix="tensor(")
        extras = []
        if not self.device.is_host:
            extras.append(f"device='{self.device}'")
        if self.dtype != DEFAULT_FLOAT and self.dtype.kind == "f":
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn={self._ctx.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                             "use .any() or .all()")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu" or self.size != 1:
            raise TypeError("only one-element integer tensors can be used as an index")
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        if not self.device.is_host:
            raise DeviceError(f"a tensor on {self.device} cannot turn into a NumPy array implicitly; "
                              "call .numpy() to copy it to the host")
        return self.data if dtype is None else self.data.astype(dtype)

    def __setitem__(self, index, value) -> None:
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("in-place assignment into a tensor that requires grad would corrupt the graph; "
                               "do it inside dg.no_grad() (e.g. to initialise a parameter) or build a new tensor")
        if isinstance(value, Tensor):
            if value.device is not self.device:
                raise DeviceError(f"setitem: value is on {value.device}, tensor on {self.device}")
            value = value.data
        from devgrad.ops.shape import normalize_index

        self.data[normalize_index(index, self.device)] = value

    def _inplace(self, other, name: str, fallback):
        """``x op= y``: in place on the data when no graph is being recorded, else out of place.

        In place is what gradient descent needs (``with dg.no_grad(): w -= lr * w.grad``).
        While a graph is recorded, ``x += y`` rebinds ``x`` to a new tensor instead, so no
        value saved for backward is ever overwritten.
        """
        recording = autograd.is_grad_enabled() and (
            self.requires_grad or (isinstance(other, Tensor) and other.requires_grad))
        if recording:
            return fallback(self, other)
        if isinstance(other, Tensor):
            if other.device is not self.device:
                raise DeviceError(f"{name}: tensors are on different devices, {self.device} and {other.device}")
            other = other.data
        elif isinstance(other, np.generic):
            other = other.item()
        getattr(self.data, name)(other)
        return self

    def __iadd__(self, other):
        return self._inplace(other, "__iadd__", Tensor.__add__)

    def __isub__(self, other):
        return self._inplace(other, "__isub__", Tensor.__sub__)

    def __imul__(self, other):
        return self._inplace(other, "__imul__", Tensor.__mul__)

    def __itruediv__(self, other):
        return self._inplace(other, "__itruediv__", Tensor.__truediv__)

    __hash__ = object.__hash__

    # Operators: see the bottom of devgrad/ops/__init__.py, which attaches them.


def _to_array(data, device, dtype):
    """Turn user data into (Device, array) following devgrad's dtype rules."""
    dt = as_dtype(dtype)
    if isinstance(data, Tensor):
        dev = resolve_device(device) if device is not None else data.device
        array = dev.put(data.data)
        array = array.astype(dt) if dt is not None and array.dtype != dt else array.copy()
        return dev, array
    if is_device_array(data) and not isinstance(data, np.ndarray):
        src = device_of(data)
        dev = resolve_device(device) if device is not None else src
        array = dev.put(data)
        return dev, (array.astype(dt) if dt is not None else array.copy())
    dev = resolve_device(device) if device is not None else default_device()
    if isinstance(data, np.ndarray | np.generic):
        host = np.asarray(data, dtype=dt)
    else:
        host = np.asarray(data)
        if dt is not None:
            host = host.astype(dt)
        elif host.dtype.kind == "f":
            host = host.astype(DEFAULT_FLOAT)
        elif host.dtype.kind not in "biuc":
            raise TypeError(f"cannot make a tensor from {type(data).__name__} (dtype {host.dtype})")
    if host.dtype.kind == "O":
        raise TypeError(f"cannot make a tensor from {type(data).__name__}: it is not numeric")
    array = dev.put(host)
    return dev, (array.copy() if array is data else array)  # never share memory with the caller's array


def tensor(data, requires_grad: bool = False, device=None, dtype=None, name: str | None = None) -> Tensor:
    """Create a tensor from data (nested lists, scalars, NumPy/CuPy arrays or a Tensor).

    Python floats become float32 (the default dtype); NumPy arrays keep their dtype;
    ``device`` is 'auto', 'cpu', 'cuda', 'cuda:N' or a Device (default: ``dg.default_device()``).
    """
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype, name=name)


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
        data = dev.xp.ones(shape, dtype=dt)
    return Tensor._make(data, dev).requires_grad_(requires_grad)


def full(shape, fill_value, device=None, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``."""
    shape, dev, dt = _creation_args((shape,), device, dtype)
    with dev.activate():
        data = dev.xp.full(shape, fill_value, dtype=dt)
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
