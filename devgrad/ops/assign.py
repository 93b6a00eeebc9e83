"""``x[index] = value`` (``Tensor.__setitem__``), recorded in the graph when it has to be.

A value that requires grad written into a tensor makes the tensor part of the graph, as PyTorch's
CopySlices: the tensor keeps its own array (every alias of it sees the new values), and its node
passes the gradient of the written elements to the value and the rest to what the tensor was
before. A tensor that shares its memory with another (a view) records the write only where the
other tensor is known: a view made by indexing (``x[1:3]``) passes the write on to the tensor it
was taken from; any other sharing (a reshape, a transpose, an array of another library) is an
error, since the other tensor would hold values without their graph.
"""

from __future__ import annotations

from devgrad.backend import DeviceError
from devgrad.core import Function, Tensor, is_grad_enabled
from devgrad.core.writes import block_of
from devgrad.cpu_capture import traced_if_recording
from devgrad.ops._util import sum_to
from devgrad.ops.elementwise import Cast
from devgrad.ops.shape import normalize_index


class IndexPut(Function):
    """``base[index] = value`` in base's own array: the gradient of base is zero where it was
    overwritten, the value's is the gradient there (summed back over a broadcast)."""

    __slots__ = ("index", "value_shape", "value_dtype")

    def forward(self, base, value, index):
        self.index = index
        self.value_shape = getattr(value, "shape", ())
        self.value_dtype = getattr(value, "dtype", None)
        traced_if_recording(base)[index] = value  # a step recorded for replay repeats the write
        return base

    def backward(self, g):
        grad_base = grad_value = None
        if self.next[0] is not None and self.index is not Ellipsis:  # x[...] = v leaves nothing of x
            keep = self.xp.ones(g.shape, dtype=g.dtype)
            keep[self.index] = 0
            grad_base = g * self.constant(g, keep)
        if self.next[1] is not None:
            grad_value = sum_to(g[self.index], self.value_shape)
            if grad_value.dtype != self.value_dtype:
                grad_value = grad_value.astype(self.value_dtype)
        return grad_base, grad_value


def setitem(a: Tensor, index, value) -> None:
    """``a[index] = value`` in place. While a graph is recorded, a value that requires grad (or a
    target that is already part of the graph) makes ``a`` a node of the graph; a leaf that requires
    grad (a parameter) refuses, since the graph may have saved its values (inside ``dg.no_grad()``
    it is an initialisation)."""
    if isinstance(value, Tensor) and value.device is not a.device:
        raise DeviceError(f"setitem: value is on {value.device}, tensor on {a.device}")
    index = normalize_index(index, a.device)
    if is_grad_enabled() and (a.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
        for target, _ in _targets(a, index):
            if target.requires_grad and target.grad_fn is None:
                raise RuntimeError("in-place assignment into a leaf tensor that requires grad (a parameter), or a "
                                   "view of one, would corrupt the graph; do it inside dg.no_grad() (e.g. to "
                                   "initialise a parameter) or build a new tensor")
        for target, where in _targets(a, index):
            _record(target, where, value)
            value = target
        return
    if isinstance(value, Tensor):
        value = value.data
    traced_if_recording(a.data)[index] = value  # a recorded step repeats it
    a._bump_version()


def assign_in_graph(a: Tensor, other, op) -> None:
    """``a op= other`` while a graph is recorded through ``a`` or ``other`` (``Tensor._inplace``):
    ``a[...] = a op other`` on a copy of a's old values, in the graph, since the op may save them."""
    before = Cast.apply(Tensor._make(a.data, a.device, a.grad_fn), dtype=a.dtype)
    setitem(a, Ellipsis, op(before, other))


def _targets(a: Tensor, index) -> list:
    """(tensor, index) for ``a`` and each tensor it was taken from by indexing, innermost first:
    each of them must record the write. Memory shared in another way is an error."""
    targets = [(a, index)]
    while a.data.base is not None:
        origin = getattr(a, "_view_of", None)
        base = origin[0]() if origin is not None else None
        if base is None or block_of(base.data) is not block_of(a.data):
            raise RuntimeError(f"x[...] = a value of the graph, into a tensor {a._describe()} that shares its memory "
                               "with another array (a reshape, a transpose or a detached view of another tensor, "
                               "or memory of another library): the other would hold the new values without their "
                               "graph. Assign into the tensor itself (x[1:3][0] = v is x[1] = v), or into a copy "
                               "(y = x.copy())")
        a, index = base, origin[1]  # type: ignore[index]  # origin is set where base is
        targets.append((a, index))
    return targets


def _record(a: Tensor, index, value) -> None:
    """Write ``value`` into ``a[index]`` as a node of the graph, which ``a`` then carries."""
    if a.dtype.kind != "f":
        raise TypeError(f"x[...] = a value of the graph, into a {a.dtype} tensor: only a floating-point tensor "
                        "can carry a gradient; convert it first (x = x.astype('float32'))")
    before = Tensor._make(a.data, a.device, a.grad_fn)  # a as it was: its node, or a constant
    out = IndexPut.apply(before, value, index=index)
    a._bump_version()  # what saved a's old values (or a's node, its output) refuses them now
    a.grad_fn, a.requires_grad = out.grad_fn, True
