"""Tensor: an array on a device, the graph node that produced it, and the Python protocol.

A tensor is an array (NumPy on the CPU, CuPy on CUDA) plus ``grad_fn``, the ``Function``
instance (the graph node) that produced it; a leaf is a tensor with ``requires_grad=True``
and no ``grad_fn``. Tensor's operators and op methods are the functions of ``devgrad.ops``,
and ``backward`` is the walk of ``devgrad.core.backward``: each is registered on the class by
its own module (``register_tensor_methods``), so this module imports neither.
devgrad/core/_tensor.pyi declares them on the class for type checkers and IDEs.
"""

from __future__ import annotations

import copy

import numpy as np

from devgrad.backend import Device, DeviceError, default_device, device_of, is_device_array
from devgrad.backend import device as resolve_device
from devgrad.core.dtypes import DEFAULT_FLOAT, as_dtype
from devgrad.backend.fp_errors import ERRORS, QUIET, quiet
from devgrad.core.grad_mode import is_grad_enabled
from devgrad.core.writes import note_write


# The hot constructors' calls, bound once (every op of every step makes a tensor).
_new = object.__new__
_ndarray = np.ndarray


class _Size(int):
    """``Tensor.size``: an int (NumPy: the number of elements) that can be called like PyTorch's
    ``size()`` (the shape) and ``size(d)``."""

    def __new__(cls, count: int, shape: tuple):
        self = super().__new__(cls, count)
        self.shape = shape
        return self

    def __call__(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]


_STATE = ("data", "device", "requires_grad", "grad", "grad_fn", "name", "_version")  # what a copy holds


class Tensor:
    """An n-dimensional array on a device (NumPy on CPU, CuPy on CUDA) that records its graph.

    Create one with ``dg.tensor(data, requires_grad=..., device=..., dtype=...)``. ``grad_fn``
    is the graph node (a ``Function``) that produced it, None for leaves and constants.
    """

    # _view_of: on a view made by indexing, (weakref to its root, indices, the root's views); on a root, its views
    __slots__ = ("data", "device", "requires_grad", "grad", "grad_fn", "name", "_version", "_view_of",
                 "__weakref__")

    # Make ``ndarray * Tensor`` call Tensor.__rmul__ instead of NumPy broadcasting over it.
    __array_priority__ = 1000
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, device=None, dtype=None, name: str | None = None):
        dev, array = _to_array(data, device, dtype)
        self.data = array
        self.device = dev
        self.grad = None
        self.grad_fn = None
        self.name = name
        self.requires_grad = False
        self._version = 0
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, device: Device, grad_fn=None):
        """Internal fast constructor: wraps an array of ``device`` without checks; ``grad_fn`` is
        the node that produced it (None for a constant)."""
        t = _new(cls)
        # A NumPy op on 0-d arrays returns a NumPy scalar: a tensor's data is always an array,
        # so in-place use (t += 1, t[...] = 0, out=) works at any shape. (An ndarray is asked
        # first: its type check costs a fraction of isinstance's walk for a type it is not.)
        t.data = data if type(data) is _ndarray or not isinstance(data, np.generic) else np.asarray(data)
        t.device = device
        t.grad = None
        t.grad_fn = grad_fn
        t.name = None
        t.requires_grad = grad_fn is not None
        t._version = 0
        return t

    def _bump_version(self) -> None:
        """Record an in-place change of the data (PyTorch's version counter): a node that saved
        this tensor for backward, or produced it and saved its output, then refuses to use it; so
        does one that saved a view, a detached copy or the base of the same memory (``note_write``)."""
        self._version += 1
        note_write(self.data)
        fn = self.grad_fn
        if fn is not None and fn.out_data is not None and fn.out_data is self.data:
            fn.output_modified = True

    def _describe(self) -> str:
        return f"{self.name!r} (shape {self.shape})" if self.name else f"of shape {self.shape}"

    # -- properties ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements, as NumPy's ``.size``; also callable as PyTorch's ``.size()`` (the
        shape) and ``.size(d)`` (one dimension)."""
        return _Size(self.data.size, self.data.shape)

    def numel(self) -> int:
        """The number of elements (PyTorch's spelling of ``.size``)."""
        return self.data.size

    def dim(self) -> int:
        """The number of dimensions (PyTorch's spelling of ``.ndim``)."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by an op on graph tensors."""
        return self.grad_fn is None

    @property
    def is_cuda(self) -> bool:
        """True for a tensor on a CUDA device (PyTorch's attribute)."""
        return self.device.type == "cuda"

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        return self.transpose()

    @property
    def xp(self):
        """The array module of this tensor's device (numpy or cupy)."""
        return self.device.xp

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Mark a leaf tensor as needing gradients (in place); returns self."""
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach() instead")
        if requires_grad and self.data.dtype.kind == "c":
            raise TypeError(f"a complex tensor ({self.data.dtype}) cannot require grad: devgrad does not support "
                            "complex numbers (docs/numpy.md); keep the real and imaginary parts as two real tensors")
        if requires_grad and self.data.dtype.kind != "f":
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

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    # -- autograd ------------------------------------------------------------------------
    # ``backward(grad=None, retain_graph=None, create_graph=False)`` is registered by
    # devgrad.core.backward, which holds the walk.

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
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn.name}")
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
        """The data for NumPy (``np.asarray(t)`` shares it; ``np.array(t)`` and ``copy=True`` copy).
        A tensor that requires grad is not shared, as in PyTorch: a write through the array would
        escape the version checks and give a silently wrong gradient."""
        if not self.device.is_host:
            raise DeviceError(f"a tensor on {self.device} cannot turn into a NumPy array implicitly; "
                              "call .numpy() to copy it to the host")
        if self.requires_grad and not copy:
            raise RuntimeError("np.asarray of a tensor that requires grad would share memory that backward "
                               "cannot watch; use t.numpy() (a copy), or np.asarray(t.detach()) to share it")
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            if copy is False:
                raise ValueError(f"a {self.data.dtype} tensor cannot become a {np.dtype(dtype)} array without a copy")
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __getstate__(self):
        """For pickle: a non-leaf comes back a leaf (requires_grad kept, no graph), as in PyTorch."""
        state = {name: getattr(self, name) for name in _STATE if hasattr(self, name)}
        state["grad_fn"] = None
        return None, state

    def __deepcopy__(self, memo):
        """A copy of a leaf; a non-leaf is refused, as in PyTorch (a copied graph reaches no leaf)."""
        if self.grad_fn is not None:
            raise RuntimeError("copy.deepcopy of a tensor computed from others (a non-leaf, with a grad_fn): "
                               "only leaves can be deep-copied, as in PyTorch; copy t.detach() (and set "
                               "requires_grad) to get a new leaf")
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for name in (name for name in _STATE if hasattr(self, name)):
            setattr(new, name, copy.deepcopy(getattr(self, name), memo))
        if hasattr(self, "__dict__"):  # a user's subclass with attributes of its own
            new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """The data as a DLPack capsule, shared without a copy (``np.from_dlpack``,
        ``torch.from_dlpack``, ``cupy.from_dlpack``). A tensor that requires grad refuses, as in
        PyTorch: its consumer would not be part of the graph; export ``t.detach()``."""
        if self.requires_grad:
            raise RuntimeError("a tensor that requires grad cannot be exported through DLPack (the graph would not "
                               "see what is done with it); use t.detach()")
        options = {"stream": stream, "max_version": max_version, "dl_device": dl_device, "copy": copy}
        return self.data.__dlpack__(**{k: v for k, v in options.items() if v is not None})

    def __dlpack_device__(self) -> tuple:
        """(DLPack device type, device index) of the data: (1, 0) for the CPU, (2, N) for cuda:N."""
        return self.data.__dlpack_device__()

    def _inplace(self, other, name: str, fallback):
        """``x op= y``: in place on the data, as in NumPy and PyTorch.

        In place is what gradient descent needs (``with dg.no_grad(): w -= lr * w.grad``). While a
        graph is recorded through ``x`` or ``y``, ``x`` is still changed in place and carries the
        graph of its new values (``x[...] = x op y``, recorded by ``Tensor.__setitem__``), as in
        PyTorch: every alias of ``x`` sees the same values whether or not ``y`` requires grad, and
        a node that saved ``x``'s old values refuses them at backward. A leaf that requires grad (a
        parameter) is an error: its values may be saved by the graph, as in PyTorch.
        """
        if is_grad_enabled() and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
            if self.requires_grad and self.grad_fn is None:
                op = {"__iadd__": "+=", "__isub__": "-=", "__imul__": "*=", "__itruediv__": "/="}[name]
                raise RuntimeError(f"'{op}' on a leaf tensor that requires grad (a parameter) while the graph is "
                                   f"being recorded would change values the graph may have saved: do the update "
                                   f"inside dg.no_grad(), e.g. with dg.no_grad(): p {op} lr * p.grad")
            self._assign_in_graph(other, fallback)  # devgrad.ops.assign
            return self
        if isinstance(other, Tensor):
            if other.device is not self.device:
                raise DeviceError(f"{name}: tensors are on different devices, {self.device} and {other.device}")
            other = other.data
        elif isinstance(other, np.generic):
            other = other.item()
        token = ERRORS.set(QUIET)  # as an op's forward: overflow gives inf, no NumPy warning
        try:
            getattr(self.data, name)(other)
        finally:
            ERRORS.reset(token)
        self._bump_version()
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

    # Operators and the methods that are ops (``+``, ``.sum()``, ``.to()``, ``x[i] = v`` ...) are
    # registered by devgrad.ops through ``register_tensor_methods``: see the bottom of
    # devgrad/ops/__init__.py; ``backward`` by devgrad.core.backward.


def register_tensor_methods(methods: dict) -> None:
    """Make each function of ``methods`` (name -> function) a method of Tensor.

    The op layer calls this once at import: Tensor's operators are its op functions, and
    this keeps core free of any import of ops. The backward walk registers ``backward`` the
    same way (it needs Tensor, so Tensor's module cannot import it).
    """
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


@quiet
def _to_array(data, device, dtype):
    """Turn user data into (Device, array) following devgrad's dtype rules (a value beyond the
    dtype's range becomes ±inf silently, as in PyTorch)."""
    dt = as_dtype(dtype)
    if isinstance(data, Tensor):
        dev = resolve_device(device) if device is not None else data.device
        array = dev.put(data.data)
        array = array.astype(dt) if dt is not None and array.dtype != dt else dev.copy(array)
        return dev, array
    if is_device_array(data) and not isinstance(data, np.ndarray):
        src = device_of(data)
        dev = resolve_device(device) if device is not None else src
        array = dev.put(data)
        return dev, (array.astype(dt) if dt is not None and array.dtype != dt else dev.copy(array))
    dev = resolve_device(device) if device is not None else default_device()
    if isinstance(data, np.ndarray | np.generic):
        host = np.asarray(data, dtype=dt)
    else:
        host = np.asarray(data)
        if dt is not None:
            host = host.astype(dt)
        elif host.dtype.kind == "f":
            if not hasattr(data, "__dlpack__"):  # an array of another library (a torch tensor) keeps its dtype
                host = host.astype(DEFAULT_FLOAT)
        elif host.dtype.kind not in "biuc":
            raise TypeError(f"cannot make a tensor from {type(data).__name__} (dtype {host.dtype})")
    if host.dtype.kind == "O":
        raise TypeError(f"cannot make a tensor from {type(data).__name__}: it is not numeric")
    array = dev.put(host)
    # never share memory with the caller's: its array itself, or a view of it (of a memmap, an
    # np.matrix, another library's tensor) that np.asarray gave
    if array is data or (array is host and host.base is not None):
        array = dev.copy(array)
    return dev, array


def tensor(data, requires_grad: bool = False, device=None, dtype=None, name: str | None = None) -> Tensor:
    """Create a tensor from data (nested lists, scalars, NumPy/CuPy arrays or a Tensor).

    Python floats become float32 (the default dtype); NumPy arrays (and other libraries' arrays,
    such as a PyTorch tensor) keep their dtype;
    ``device`` is 'auto', 'cpu', 'cuda', 'cuda:N' or a Device (default: ``dg.default_device()``).
    """
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype, name=name)
