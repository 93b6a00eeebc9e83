"""Function: one differentiable op (forward on arrays, one backward formula) and the graph node.

Graph bookkeeping happens in exactly two places, ``Function.apply`` (forward: record the
node) and the backward walk (devgrad.core.backward): op classes contain only math. Each node
remembers, per input, where that input's gradient goes (``next``): another node, a leaf
tensor, or None. Nodes hold only what their backward needs, so an addition keeps no arrays
alive at all.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

import numpy as np

from devgrad.backend import Device, DeviceError
from devgrad.backend.fp_errors import ERRORS, QUIET
from devgrad.core.grad_mode import is_grad_enabled, mode
from devgrad.core._tensor import Tensor
from devgrad.core.writes import WRITES, written_since

# Creation order of graph nodes: a node is always created after the nodes of its inputs, so
# visiting nodes from the highest number down is a topological order (no recursion, no sort).
_sequence = itertools.count()
_new = object.__new__  # bound once: every op of every step makes a node and a tensor
_make = Tensor._make
_ndarray = np.ndarray


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
    ``operands(g)`` / ``result(g)`` / ``constant(g, array)``, which give them in ``g``'s kind.
    Where the two kinds need different calls (an op, differentiable again, on Tensors; a fused
    kernel on arrays), ``for_kind(g, on_tensors, on_arrays)`` chooses: formulas never ask ``g``'s
    kind themselves. Without the flag, the first-order path wraps the gradient in a Tensor and
    unwraps the result.
    """

    __slots__ = ("next", "inputs", "input_arrays", "versions", "saved", "out_data", "device", "shape", "released",
                 "seq", "output_modified", "writes", "given")
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
    writes: int  # WRITES.count when recorded or checked (-1 once released): a later write into what it saved errs
    given: tuple | None  # an op that saves no inputs: what its untracked inputs were, for drawings (``_given``)

    save_inputs = False
    save_output = False
    array_backward = False  # backward's formula also runs on raw arrays (see the class doc)
    # forward computes with floats, so NumPy may flag inf/NaN: it runs under fp_errors' state. An op
    # that only moves or views data (a reshape) sets False and skips setting it (every step's reshapes)
    arithmetic = True

    @classmethod
    def apply(cls, *args, **params):
        """Run forward on the inputs' arrays and, when needed, record the node."""
        # The hot path of every op: kept to plain loops and attribute access on purpose.
        dev = None
        requires = 0  # how many inputs take a gradient (the others: ``given``, for drawings)
        arrays = []
        nexts = []
        versions = []  # each saved Tensor's version (for save_inputs ops): in-place changes are errors
        for arg in args:
            if isinstance(arg, Tensor):
                if arg.device is not dev:
                    if dev is not None:
                        raise _mixed_devices(cls, dev, arg.device)
                    dev = arg.device
                arrays.append(arg.data)
                versions.append((arg, arg._version))
                if arg.requires_grad:
                    requires += 1
                    fn = arg.grad_fn
                    nexts.append(arg if fn is None else fn)
                else:
                    nexts.append(None)
            else:
                arrays.append(arg)
                nexts.append(None)
        if dev is None:
            raise TypeError(_no_tensor_message(cls, args))
        node = _new(cls)
        node.device = dev
        node.saved = None
        # inf and NaN are values, not NumPy warnings (fp_errors): the error state is set unless the
        # caller (the backward walk, a replay, an op's own forward) has set it already
        token = None if not cls.arithmetic or ERRORS.get() is QUIET else ERRORS.set(QUIET)
        try:
            if not dev.index:  # the hot path: a direct call
                out = node.forward(*arrays, **params)
            else:  # a second GPU: Device.run makes it current for the kernels
                out = dev.run(node.forward, *arrays, **params)
        finally:
            if token is not None:
                ERRORS.reset(token)
        if not requires or not mode.enabled:
            return _make(out, dev)
        if out.dtype.kind == "c":
            raise _complex_error(cls, out)
        node.next = tuple(nexts)
        node.seq = next(_sequence)
        if cls.save_inputs:
            node.inputs = args
            node.input_arrays = arrays  # the same arrays, for formulas running on arrays (operands)
            node.versions = versions  # (Tensor, its version now): an in-place change before backward is an error
        else:
            node.inputs = node.input_arrays = node.versions = None
        node.given = _given(args, nexts) if requires < len(args) and not cls.save_inputs else None
        node.released = False  # (output_modified is set only by a write into the output: read with a default)
        node.writes = WRITES.count
        node.shape = out.shape
        t = _make(out, dev, node)
        node.out_data = t.data if cls.save_output else None  # the array t wraps (a 0-d one too): writes are seen
        return t

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

    @staticmethod
    def for_kind(g, on_tensors, on_arrays):
        """``on_tensors`` when ``g`` is a Tensor (a graph of the gradient is being built), else
        ``on_arrays`` (the first-order path): the one place a formula's two kinds part, e.g.
        ``self.for_kind(g, matmul, self.device.matmul)(a, b)``. Give both the same signature."""
        # a host array asked first (the first-order path of every step): cheaper than isinstance's walk
        return on_arrays if type(g) is _ndarray or not isinstance(g, Tensor) else on_tensors

    def operands(self, g):
        """The saved inputs in ``g``'s kind: Tensors when ``g`` is a Tensor, else raw arrays
        (Python scalars stay as they are)."""
        return self.input_arrays if type(g) is _ndarray or not isinstance(g, Tensor) else self.inputs

    def result(self, g):
        """The op's output in ``g``'s kind (``output()`` for a Tensor ``g``, else the raw array)."""
        return self.out_data if type(g) is _ndarray or not isinstance(g, Tensor) else self.output()

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
        if self.writes != WRITES.count:
            saved = list(self.input_arrays or ())
            if self.out_data is not None:
                saved.append(self.out_data)
            for array in saved:
                if written_since(array, self.writes):
                    self._modified("memory it shares with a view, a reshape or a detached tensor (or their base) "
                                   "was changed in place")
            self.writes = WRITES.count  # checked up to here: a second backward checks only later writes

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
            self.released, self.writes = True, -1  # -1: never the current count (the walk's check sees it)

    @property
    def name(self) -> str:
        return type(self).__name__


def _given(args: tuple, nexts: list) -> tuple:
    """What a node that saves no inputs remembers of those whose gradient goes nowhere, for
    drawings of the graph (devgrad.viz): a constant as it is, a one-element tensor itself, a
    larger tensor as a weak reference and its shape (it keeps no array alive); None where the
    input's gradient has a place (``next``) to go."""
    given: list = []
    for arg, nxt in zip(args, nexts):
        if nxt is not None:
            given.append(None)
        elif not isinstance(arg, Tensor):  # an array's own shape: no NumPy function on a CuPy array
            shape = getattr(arg, "shape", None)
            given.append(Absent(shape) if shape else arg)
        elif arg.data.size <= 1:
            given.append(arg)
        else:
            given.append(Absent(arg.shape, weakref.ref(arg)))
    return tuple(given)


class Absent:
    """An input a node did not keep: its shape and, for a tensor, a weak reference to it."""

    __slots__ = ("ref", "shape")

    def __init__(self, shape: tuple, ref=None):
        self.shape = tuple(shape)
        self.ref = ref


def _complex_error(cls, out) -> TypeError:
    """The error for a complex result that would need a gradient."""
    return TypeError(f"{cls.__name__}: its result is complex ({out.dtype}) and would need a gradient: devgrad "
                     "does not support complex numbers (docs/numpy.md); keep real and imaginary parts apart")


def _mixed_devices(cls, first, other) -> DeviceError:
    return DeviceError(f"{cls.__name__}: tensors are on different devices, {first} and {other}. "
                       "devgrad never moves data implicitly: move one with .to(...)")


def _no_tensor_message(cls, args) -> str:
    """The error for an op called on plain data only (dg.sin(array)): it has no device to run on."""
    name = getattr(cls, "ufunc", "") or cls.__name__.lower()
    kinds = ", ".join(type(a).__name__ for a in args) or "nothing"
    return (f"{name}: needs a Tensor argument, got {kinds}; wrap the data with dg.tensor(...) "
            "(with requires_grad=True to differentiate it)")
