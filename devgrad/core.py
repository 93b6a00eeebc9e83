"""The core: Tensor, Function (one op = forward on arrays + backward on Tensors) and the walk.

Everything about the graph lives here. A tensor is an array on a device plus ``grad_fn``,
the ``Function`` instance (the graph node) that produced it; a leaf is a tensor with
``requires_grad=True`` and no ``grad_fn``. Graph bookkeeping happens in exactly two places,
``Function.apply`` (forward: record the node) and ``run_backward`` (the iterative walk):
op classes contain only math. Each node remembers, per input, where that input's gradient
goes (``next``): another node, a leaf tensor, or None. Nodes hold only what their backward
needs, so an addition keeps no arrays alive at all.

Tensor's operators and op methods are the functions of ``devgrad.ops``, registered by that
layer at import (``register_tensor_methods``), so this module imports nothing above backend.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import threading
from typing import Any

import numpy as np

from devgrad.backend import Device, DeviceError, default_device, device_of, is_device_array
from devgrad.backend import device as resolve_device

_mode = threading.local()

# NumPy keeps its floating-point error state in a context variable (NumPy >= 2): setting it
# directly is several times cheaper than entering ``np.errstate``, which matters per op call.
try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj
    _QUIET_STATE = _make_extobj(all="ignore")
except ImportError:  # another NumPy layout: the public context manager, slower but the same effect
    _extobj_contextvar = _QUIET_STATE = None


def quiet(forward):
    """Decorate an op's ``forward`` so NumPy's floating-point warnings stay off inside it.

    Division by 0, log or sqrt of a negative number and exp's overflow give inf or NaN, which
    are values, not events (PyTorch is silent too). It costs about a microsecond a call, so
    the cheapest arithmetic (+, -, *, sum, mean, matmul, linear) goes without: there an
    infinite or overflowing input can still raise NumPy's warning in the forward. Every
    backward runs under one error state for the whole walk and is silent.
    """
    if _extobj_contextvar is None:
        @functools.wraps(forward)
        def slow(self, *arrays, **params):
            with np.errstate(all="ignore"):
                return forward(self, *arrays, **params)
        return slow

    @functools.wraps(forward)
    def wrapper(self, *arrays, **params):
        token = _extobj_contextvar.set(_QUIET_STATE)
        try:
            return forward(self, *arrays, **params)
        finally:
            _extobj_contextvar.reset(token)
    return wrapper


# Creation order of graph nodes: a node is always created after the nodes of its inputs, so
# visiting nodes from the highest number down is a topological order (no recursion, no sort).
_sequence = itertools.count()


def is_grad_enabled() -> bool:
    """True when ops record the graph (the default), False inside ``no_grad()``."""
    return getattr(_mode, "enabled", True)


def set_grad_enabled(enabled: bool) -> None:
    """Turn graph recording on or off for this thread."""
    _mode.enabled = bool(enabled)


class _GradMode:
    """Context manager and decorator that sets grad mode and restores it on exit."""

    enabled = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _mode.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        _mode.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801 - named like PyTorch's on purpose
    """Disable graph recording: ``with dg.no_grad(): ...`` or ``@dg.no_grad()``."""

    enabled = False


class enable_grad(_GradMode):  # noqa: N801
    """Re-enable graph recording inside a ``no_grad`` block."""

    enabled = True


class Function:
    """One differentiable op.

    Subclasses implement ``forward(*arrays, **params) -> array`` on raw NumPy/CuPy arrays
    and ``backward(grad_output) -> grad or tuple of grads``: one formula, which gives first
    and higher-order gradients. Set ``save_inputs`` / ``save_output`` to have ``apply`` keep
    the input Tensors or the output for backward; keep any other array backward needs in
    ``self.saved``. Metadata (axes, shapes) goes in the subclass's own ``__slots__``.

    ``grad_output`` is a Tensor while a graph of the gradient is being built
    (``create_graph=True``), and a raw array on the first-order path when the class sets
    ``array_backward = True``: its formula then uses only what arrays and Tensors share
    (operators, ``.sum``, ``.reshape``, ``sum_to``) and reads saved values with
    ``operands(g)`` / ``result(g)``, which give them in ``g``'s kind. Without the flag, the
    first-order path wraps the gradient in a Tensor and unwraps the result.
    """

    __slots__ = ("next", "inputs", "input_arrays", "versions", "saved", "out_data", "device", "shape", "released",
                 "seq", "output_modified")
    # what apply() records on a node (declared for type checkers; the slots above hold them)
    next: tuple
    inputs: tuple | None
    input_arrays: list | None
    versions: list | None
    saved: Any
    out_data: Any
    device: Device  # a recorded node's (forward on no Tensor at all runs with None and records nothing)
    shape: tuple
    released: bool
    seq: int
    output_modified: bool

    save_inputs = False
    save_output = False
    array_backward = False  # backward's formula also runs on raw arrays (see the class doc)

    @classmethod
    def apply(cls, *args, **params):
        """Run forward on the inputs' arrays and, when needed, record the node."""
        # The hot path of every op: kept to plain loops and attribute access on purpose.
        dev = None
        requires = False
        arrays = []
        nexts = []
        versions = []  # each saved Tensor's version (for save_inputs ops): in-place changes are errors
        for arg in args:
            if isinstance(arg, Tensor):
                if dev is None:
                    dev = arg.device
                elif arg.device is not dev:
                    raise DeviceError(
                        f"{cls.__name__}: tensors are on different devices, {dev} and {arg.device}. "
                        "devgrad never moves data implicitly: move one with .to(...)")
                if arg.requires_grad:
                    requires = True
                    nexts.append(arg.grad_fn if arg.grad_fn is not None else arg)
                else:
                    nexts.append(None)
                arrays.append(arg.data)
                versions.append((arg, arg._version))
            else:
                arrays.append(arg)
                nexts.append(None)
        node = object.__new__(cls)
        node.device = dev
        node.saved = None
        if dev is None or not dev.index:  # the hot path: a direct call
            out = node.forward(*arrays, **params)
        else:  # a second GPU: Device.run makes it current for the kernels
            out = dev.run(node.forward, *arrays, **params)
        if not requires or not getattr(_mode, "enabled", True):
            return Tensor._make(out, dev)
        node.next = tuple(nexts)
        node.seq = next(_sequence)
        if cls.save_inputs:
            node.inputs = args
            node.input_arrays = arrays  # the same arrays, for formulas running on arrays (operands)
            node.versions = versions  # (Tensor, its version now): an in-place change before backward is an error
        else:
            node.inputs = node.input_arrays = node.versions = None
        node.out_data = out if cls.save_output else None
        node.output_modified = False
        node.shape = out.shape
        node.released = False
        return Tensor._make(out, dev, node)

    def forward(self, *arrays, **params) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, grad_output) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    @property
    def xp(self):
        """The array module (numpy or cupy) of this op's device."""
        return self.device.xp

    @property
    def needs_input_grad(self) -> list:
        """Per input: does its gradient go anywhere? Backward may skip the others."""
        return [n is not None for n in self.next]

    def output(self):
        """The op's output as a Tensor linked to this node (for backward formulas)."""
        return Tensor._make(self.out_data, self.device, self if is_grad_enabled() else None)

    def const(self, array):
        """Wrap an array computed in forward as a constant (no-gradient) Tensor."""
        return Tensor._make(array, self.device)

    def operands(self, g):
        """The saved inputs in ``g``'s kind: Tensors when ``g`` is a Tensor, else raw arrays
        (Python scalars stay as they are)."""
        return self.inputs if isinstance(g, Tensor) else self.input_arrays

    def result(self, g):
        """The op's output in ``g``'s kind (``output()`` for a Tensor ``g``, else the raw array)."""
        return self.output() if isinstance(g, Tensor) else self.out_data

    def check_saved(self) -> None:
        """Raise when a tensor this node saved for backward was changed in place since."""
        versions = self.versions
        if versions is not None and self.inputs is not None:
            for t, version in versions:
                if t._version != version:
                    self._modified(f"its input {t._describe()} was changed in place (version {version} when "
                                   f"saved, {t._version} now)")
        if getattr(self, "output_modified", False):
            self._modified("its output was changed in place")

    def _modified(self, what: str):
        raise RuntimeError(
            f"one of the tensors needed for the gradient was modified by an in-place operation: {self.name} saved "
            f"it for backward, then {what}. The gradient "
            "would silently use the new values. Change it out of place (y = x + 1 instead of x += 1), or use a "
            ".clone() in the graph, or run backward before modifying it.")

    def constant(self, g, array):
        """An array computed from saved data, in ``g``'s kind (a constant Tensor, or itself)."""
        return Tensor._make(array, self.device) if isinstance(g, Tensor) else array

    def release(self) -> None:
        """Drop what backward needed; a later backward through this node raises."""
        if self.inputs is not None or self.saved is not None or self.out_data is not None:
            self.inputs = self.input_arrays = self.versions = self.saved = self.out_data = None
            self.released = True

    @property
    def name(self) -> str:
        return type(self).__name__


def run_backward(outputs, grad_outputs, *, retain_graph=None, create_graph=False, inputs=None):
    """Propagate ``grad_outputs`` from ``outputs`` through the graph.

    With ``inputs=None`` gradients accumulate into ``.grad`` of every leaf reached
    (``Tensor.backward``). Otherwise the gradients for ``inputs`` are returned as a list
    (None where an input is not reached) and no ``.grad`` is touched (``dg.grad``).

    First-order gradients (``create_graph=False``) flow as raw arrays through every op whose
    backward formula runs on arrays (``array_backward``): no graph is being built, so wrapping
    every intermediate gradient in a Tensor would be pure overhead. The tests check, for every
    op, that the first-order and the graph-building gradients agree.
    """
    if retain_graph is None:
        retain_graph = create_graph
    fast = not create_graph
    node_grads: dict = {}  # node -> gradient of its output; a node is in `heap` iff it is here
    leaf_grads: dict = {}
    heap: list = []
    for out, given in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph. Create its inputs "
                "with requires_grad=True, and do not compute it inside dg.no_grad()")
        g = _root_grad(out, given)
        if fast:
            g = g.data
        if out.grad_fn is None:
            _accumulate(leaf_grads, id(out), (out, g))
        else:
            node = out.grad_fn
            if node in node_grads:
                node_grads[node] = node_grads[node] + g
            else:
                node_grads[node] = g
                heapq.heappush(heap, (-node.seq, node))

    wanted = None
    if inputs is not None:
        wanted = {id(t.grad_fn): None for t in inputs if t.grad_fn is not None}

    prev_mode = is_grad_enabled()
    _mode.enabled = create_graph
    # One error state for the whole walk: a backward formula meeting inf or 0/0 gives inf or NaN
    # silently, as the forward did.
    errors = np.errstate(all="ignore")
    errors.__enter__()
    try:
        while heap:
            node = heapq.heappop(heap)[1]
            g = node_grads.pop(node)
            if wanted is not None and id(node) in wanted:
                wanted[id(node)] = g
            if node.released:
                raise RuntimeError(
                    f"backward through {node.name} a second time: its saved values were freed by the "
                    "first backward. Pass retain_graph=True to the first backward() (or dg.grad) "
                    "to keep them.")
            versions = node.versions  # check_saved, inlined for the hot path: raises on an in-place change
            if versions:
                for t, version in versions:
                    if t._version != version:
                        node.check_saved()
            if node.output_modified:
                node.check_saved()
            if node.device.index:  # a second GPU: Device.run makes it current for the kernels
                in_grads = node.device.run(_node_backward, node, g, fast)
            else:
                in_grads = _node_backward(node, g, fast)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if not retain_graph:
                node.release()
            for target, gi in zip(node.next, in_grads):
                if target is None or gi is None:
                    continue
                if isinstance(target, Function):
                    if gi.shape != target.shape:
                        _bad_shape(node, target.name, gi.shape, target.shape)
                    prev = node_grads.get(target)
                    if prev is None:
                        node_grads[target] = gi
                        heapq.heappush(heap, (-target.seq, target))
                    else:
                        node_grads[target] = prev + gi
                else:
                    if gi.shape != target.shape:
                        _bad_shape(node, "a leaf tensor", gi.shape, target.shape)
                    _accumulate(leaf_grads, id(target), (target, gi))
    finally:
        _mode.enabled = prev_mode
        errors.__exit__(None, None, None)

    if inputs is None:
        if fast:
            _set_leaf_grads_from_arrays(leaf_grads)
        else:
            for leaf, g in leaf_grads.values():
                g = g if g.dtype == leaf.dtype else g.astype(leaf.dtype)
                leaf.grad = g if leaf.grad is None else leaf.grad + g
        return None
    if fast:
        leaf_grads = {k: (leaf, _wrap_owned(g, leaf.device)) for k, (leaf, g) in leaf_grads.items()}
        devices = {id(t.grad_fn): t.device for t in inputs if t.grad_fn is not None}
        wanted = {k: None if g is None else _wrap_owned(g, devices[k]) for k, g in wanted.items()}
    result = []
    for t in inputs:
        if t.grad_fn is not None:
            result.append(wanted.get(id(t.grad_fn)))
        else:
            entry = leaf_grads.get(id(t))
            result.append(None if entry is None else entry[1])
    return result


def _node_backward(node, g, fast: bool):
    """One node's input gradients: Tensor formulas, or arrays on the first-order fast path."""
    if not fast:
        in_grads = node.backward(g)
        _check_devices(node, in_grads)
        return in_grads
    if node.array_backward:
        return node.backward(g)
    in_grads = node.backward(Tensor._make(g, node.device))
    if isinstance(in_grads, tuple):
        return tuple(None if t is None else t.data for t in in_grads)
    return in_grads.data


def _check_devices(node, in_grads) -> None:
    """Gradients (Tensor path) must live where their inputs live: ops never move data."""
    grads = in_grads if isinstance(in_grads, tuple) else (in_grads,)
    for target, gi in zip(node.next, grads):
        if target is not None and gi is not None and gi.device is not target.device:
            raise RuntimeError(f"internal error: {node.name}.backward produced a gradient on {gi.device} for an "
                               f"input on {target.device}")


def _set_leaf_grads_from_arrays(leaf_grads: dict) -> None:
    """Store first-order gradient arrays in ``.grad``: each leaf owns its own writable array."""
    seen: set = set()
    for leaf, g in leaf_grads.values():
        if g.dtype != leaf.data.dtype:
            g = g.astype(leaf.data.dtype)
        if leaf.grad is not None:
            leaf.grad = Tensor._make(leaf.grad.data + g, leaf.device)
            continue
        # A view (e.g. of a broadcast) or one array reaching two leaves (a + b) is copied, so
        # in-place clipping or zeroing of one gradient never touches another array.
        if g.base is not None or id(g) in seen or not getattr(g.flags, "writeable", True):
            g = leaf.device.copy(g)
        seen.add(id(g))
        leaf.grad = Tensor._make(g, leaf.device)


def _wrap_owned(array, device):
    """A gradient array as a Tensor that owns writable memory (views, e.g. of broadcasts, are copied)."""
    if array.base is not None or not getattr(array.flags, "writeable", True):
        array = device.copy(array)
    return Tensor._make(array, device)


def _accumulate(leaf_grads: dict, key: int, entry) -> None:
    prev = leaf_grads.get(key)
    leaf_grads[key] = entry if prev is None else (prev[0], prev[1] + entry[1])


def _root_grad(out, g):
    if g is None:
        if out.data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implied only for a single-element output, this one has shape "
                f"{out.shape}. Reduce it first (e.g. .sum() or .mean()) or pass grad=...")
        with out.device.activate():
            return Tensor._make(out.device.kernels.full(out.shape, 1.0, out.dtype), out.device)
    if not isinstance(g, Tensor):
        g = Tensor._make(out.device.put(out.device.xp.asarray(g, dtype=out.dtype)), out.device)
    if g.device is not out.device:
        raise DeviceError(f"backward: grad is on {g.device} but the output is on {out.device}")
    if g.shape != out.shape:
        raise RuntimeError(f"backward: grad has shape {g.shape} but the output has shape {out.shape}")
    return g


def _bad_shape(node, target, got, expected):
    raise RuntimeError(
        f"internal error: {node.name}.backward produced a gradient of shape {got} for {target} "
        f"of shape {expected}")


def grad(outputs, inputs, grad_outputs=None, *, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple of Tensors.

    Leaves' ``.grad`` is left untouched. With ``create_graph=True`` the returned gradients
    have a graph of their own, so they can be differentiated again (second derivatives).
    """
    single_out = isinstance(outputs, Tensor)
    outputs = [outputs] if single_out else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    result = run_backward(outputs, list(grad_outputs), retain_graph=retain_graph,
                          create_graph=create_graph, inputs=inputs)
    for i, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {inputs[i].shape}) is not used to compute the outputs; "
                "pass allow_unused=True to get None for it")
    return tuple(result)


# -- Tensor --------------------------------------------------------------------------------

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


class _Size(int):
    """``Tensor.size``: an int (NumPy: the number of elements) that can be called like PyTorch's
    ``size()`` (the shape) and ``size(d)``."""

    def __new__(cls, count: int, shape: tuple):
        self = super().__new__(cls, count)
        self.shape = shape
        return self

    def __call__(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]


class Tensor:
    """An n-dimensional array on a device (NumPy on CPU, CuPy on CUDA) that records its graph.

    Create one with ``dg.tensor(data, requires_grad=..., device=..., dtype=...)``. ``grad_fn``
    is the graph node (a ``Function``) that produced it, None for leaves and constants.
    """

    __slots__ = ("data", "device", "requires_grad", "grad", "grad_fn", "name", "_version", "__weakref__")

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
        t = object.__new__(cls)
        # A NumPy op on 0-d arrays returns a NumPy scalar: a tensor's data is always an array,
        # so in-place use (t += 1, t[...] = 0, out=) works at any shape.
        t.data = np.asarray(data) if isinstance(data, np.generic) else data
        t.device = device
        t.grad = None
        t.grad_fn = grad_fn
        t.name = None
        t.requires_grad = grad_fn is not None
        t._version = 0
        return t

    def _bump_version(self) -> None:
        """Record an in-place change of the data (PyTorch's version counter): a node that saved
        this tensor for backward, or produced it and saved its output, then refuses to use it."""
        self._version += 1
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
    def backward(self, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        ``grad`` may be omitted for one-element tensors. The graph's saved values are freed
        afterwards unless ``retain_graph=True`` (default: the value of ``create_graph``).
        """
        run_backward([self], [grad], retain_graph=retain_graph, create_graph=create_graph)

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
        """The data for NumPy (``np.asarray(t)`` shares it; ``np.array(t)`` and ``copy=True`` copy)."""
        if not self.device.is_host:
            raise DeviceError(f"a tensor on {self.device} cannot turn into a NumPy array implicitly; "
                              "call .numpy() to copy it to the host")
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            if copy is False:
                raise ValueError(f"a {self.data.dtype} tensor cannot become a {np.dtype(dtype)} array without a copy")
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

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
        """``x op= y``: in place on the data when no graph is being recorded, else out of place.

        In place is what gradient descent needs (``with dg.no_grad(): w -= lr * w.grad``).
        While a graph is recorded, ``x += y`` rebinds ``x`` to a new tensor instead, so no
        value saved for backward is ever overwritten. A leaf that requires grad (a parameter)
        is the exception: rebinding it would silently detach the name from the parameter (the
        update would do nothing), so that is an error, as in PyTorch.
        """
        recording = is_grad_enabled() and (
            self.requires_grad or (isinstance(other, Tensor) and other.requires_grad))
        if recording:
            if self.requires_grad and self.grad_fn is None:
                op = {"__iadd__": "+=", "__isub__": "-=", "__imul__": "*=", "__itruediv__": "/="}[name]
                raise RuntimeError(f"'{op}' on a leaf tensor that requires grad (a parameter) while the graph is "
                                   f"being recorded would not update it: do the update inside dg.no_grad(), "
                                   f"e.g. with dg.no_grad(): p {op} lr * p.grad")
            return fallback(self, other)
        if isinstance(other, Tensor):
            if other.device is not self.device:
                raise DeviceError(f"{name}: tensors are on different devices, {self.device} and {other.device}")
            other = other.data
        elif isinstance(other, np.generic):
            other = other.item()
        getattr(self.data, name)(other)
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
    # devgrad/ops/__init__.py.


def register_tensor_methods(methods: dict) -> None:
    """Make each op function of ``methods`` (name -> function) a method of Tensor.

    The op layer calls this once at import: Tensor's operators are its op functions, and
    this keeps core free of any import of ops.
    """
    for name, fn in methods.items():
        setattr(Tensor, name, fn)

def _to_array(data, device, dtype):
    """Turn user data into (Device, array) following devgrad's dtype rules."""
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
            host = host.astype(DEFAULT_FLOAT)
        elif host.dtype.kind not in "biuc":
            raise TypeError(f"cannot make a tensor from {type(data).__name__} (dtype {host.dtype})")
    if host.dtype.kind == "O":
        raise TypeError(f"cannot make a tensor from {type(data).__name__}: it is not numeric")
    array = dev.put(host)
    return dev, (dev.copy(array) if array is data else array)  # never share memory with the caller's array


def tensor(data, requires_grad: bool = False, device=None, dtype=None, name: str | None = None) -> Tensor:
    """Create a tensor from data (nested lists, scalars, NumPy/CuPy arrays or a Tensor).

    Python floats become float32 (the default dtype); NumPy arrays keep their dtype;
    ``device`` is 'auto', 'cpu', 'cuda', 'cuda:N' or a Device (default: ``dg.default_device()``).
    """
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype, name=name)
