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
from devgrad.ops.shape import GetItem, normalize_index
from devgrad.ops.views import is_basic, root_of, steps_of


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
        root, path, views = root_of(a)
        if root.requires_grad and root.grad_fn is None:
            raise RuntimeError("in-place assignment into a leaf tensor that requires grad (a parameter), or a "
                               "view of one, would corrupt the graph; do it inside dg.no_grad() (e.g. to "
                               "initialise a parameter) or build a new tensor")
        _record(root, (*path, index), value, views)
        if a is not root:
            a._bump_version()
        return
    if isinstance(value, Tensor):
        value = value.data
    traced_if_recording(a.data)[index] = value  # a recorded step repeats it
    a._bump_version()


def assign_in_graph(a: Tensor, other, op) -> None:
    """``a op= other`` while a graph is recorded through ``a`` or ``other`` (``Tensor._inplace``):
    ``a[...] = a op other`` on a copy of a's old values, in the graph, since the op may save them."""
    old = traced_if_recording(a.data)  # a recorded step reads the values a has when it is replayed
    before = Cast.apply(Tensor._make(old, a.device, a.grad_fn), dtype=a.dtype)
    setitem(a, Ellipsis, op(before, other))


def _record(root: Tensor, path: tuple, value, views) -> None:
    """Write ``value`` into ``root[path[0]][path[1]]...`` as a node of the graph, which ``root``
    then carries: the write goes into a fresh view of root's graph as it is now, and each
    enclosing view is written back into its base (PyTorch's CopySlices)."""
    if root.dtype.kind != "f":
        raise TypeError(f"x[...] = a value of the graph, into a {root.dtype} tensor: only a floating-point tensor "
                        "can carry a gradient; convert it first (x = x.astype('float32'))")
    chain = [Tensor._make(root.data, root.device, root.grad_fn)]  # root as it was: its node, or a constant
    for index in path[:-1]:
        chain.append(GetItem.apply(chain[-1], index=index, accumulate=False))
    written = _region(chain[-1].data, path[-1])
    for base, index in zip(reversed(chain), reversed(path), strict=True):
        value = IndexPut.apply(base, value, index=index)
    root._bump_version()  # what saved root's old values (or root's node, its output) refuses them now
    root.grad_fn, root.requires_grad = value.grad_fn, True
    if views:
        _refresh(root, views, written)


def _region(array, index):
    """The elements ``array[index]`` as a view of them where the index is basic, else ``array``."""
    region = array[index] if is_basic(index) else array
    return region if getattr(region, "base", None) is not None else array


def _refresh(root: Tensor, views: list, written) -> None:
    """Give each live view of ``root`` over the ``written`` elements a node of root's new graph
    (a view taken before the write reads the new values: its gradient goes to what wrote them)."""
    xp = root.device.xp
    block = block_of(root.data)
    live = []
    for ref in views:
        view = ref()
        if view is None:
            continue
        live.append(ref)
        if view.grad_fn is None and view.requires_grad:
            continue  # made a leaf by requires_grad_(): its gradient is its own
        if not xp.may_share_memory(view.data, written) or block_of(view.data) is not block:
            continue
        fresh = Tensor._make(root.data, root.device, root.grad_fn)
        for op, parameters in steps_of(view):  # an index, or the op that made the view (a reshape ...)
            if op is None:
                fresh = GetItem.apply(fresh, index=parameters["index"], accumulate=False)
            else:
                fresh = op.apply(fresh, **parameters)
        view.grad_fn, view.requires_grad = fresh.grad_fn, True
    views[:] = live
