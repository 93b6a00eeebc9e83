"""Views made by indexing, and the tensor each was taken from: what a write of graph values into
one tensor must record in the others (``devgrad.ops.assign``).

A basic index (ints, slices, None, Ellipsis) gives a view, as in NumPy and PyTorch; an index of
an integer for every axis gives a 0-d view too (NumPy would give a copy). The view's
``_view_of`` is ``(weak reference to its root, the indices from the root, the root's views)``:
the root is the tensor that owns the memory (a view of a view reaches it even when the middle
tensor is gone), and the root's own ``_view_of`` is the list of weak references to its views. A
write of graph values then records into the root and gives every live view over the written
elements a node of the root's new graph, as PyTorch regenerates a view's ``grad_fn``. An advanced
index (integer or boolean arrays) gives a copy: a root with no views yet, even where NumPy left
the copy with a ``.base`` of its own.
"""

from __future__ import annotations

import numbers
import weakref

from devgrad.core import Tensor
from devgrad.core.writes import block_of

_new = object.__new__
_PRUNE_FROM = 64  # a root's list of views drops the dead ones each time its length reaches a power of 2 from here


def is_integer(part) -> bool:
    """An integer index (not a bool, which NumPy takes as a mask)."""
    return isinstance(part, numbers.Integral) and not isinstance(part, bool)


def is_basic(index) -> bool:
    """Whether ``index`` selects a view: only ints, slices, None and Ellipsis."""
    for part in index if type(index) is tuple else (index,):
        if not (part is None or part is Ellipsis or type(part) is slice or is_integer(part)):
            return False
    return True


def view_index(index, ndim: int):
    """``index`` with Ellipsis appended where it has an integer for every axis: NumPy's result
    is then a 0-d view rather than a copy, as PyTorch's ``x[1]``."""
    if type(index) is tuple:
        if len(index) == ndim and all(is_integer(p) for p in index):
            return (*index, Ellipsis)
    elif ndim == 1 and is_integer(index):
        return (index, Ellipsis)
    return index


def note_view(a, out, index) -> None:  # Tensors: their _view_of slot is not in the stub
    """Record that ``out = a[index]`` shares ``a``'s memory (``out.data.base`` is not None)."""
    if not is_basic(index):
        out._view_of = []  # NumPy's copy: its .base is an array no other tensor holds
        return
    origin = getattr(a, "_view_of", None)
    if type(origin) is Remade:  # an index of a reshape (...): refreshed after a write, never written through
        note_remade(a, out, (None, {"index": index}))
        return
    if type(origin) is tuple:  # a view of a view: the same root, one index more
        views = origin[2]
        out._view_of = (origin[0], (*origin[1], index), views)
    else:
        views = origin
        if type(views) is not list:
            views = []
            if a.data.base is None:  # a owns its memory: writes into its views record into it
                a._view_of = views
        out._view_of = (weakref.ref(a), (index,), views)
    _listed(views, out)


class Remade:
    """``_view_of`` of a view made other than by a basic index (a reshape, a transpose, a
    broadcast, or an index of one of those): its root, the steps that make it from the root
    (``(op, its parameters)``, op None for an index), and the root's views. A write of graph
    values into the root gives it a fresh node of the root's new graph (``assign._refresh``); a
    write through it is refused (``root_of``)."""

    __slots__ = ("root", "steps", "views")

    def __init__(self, root, steps: tuple, views: list):
        self.root, self.steps, self.views = root, steps, views


def note_remade(a, out, step: tuple) -> None:  # Tensors: their _view_of slot is not in the stub
    """Record that ``out``, made from ``a`` by ``step`` (``op.apply(a, **parameters)`` makes it
    again), shares a's memory, so that a later write of graph values into the root reaches it."""
    base = out.data.base
    if out is a or base is None or (base is not a.data and block_of(base) is not block_of(a.data)):
        return  # (a view of a's own array, the usual case, is of its block: no walk of the bases)
    origin = getattr(a, "_view_of", None)
    if type(origin) is tuple:
        root, steps, views = origin[0], tuple((None, {"index": i}) for i in origin[1]), origin[2]
    elif type(origin) is Remade:
        root, steps, views = origin.root, origin.steps, origin.views
    elif a.data.base is None:  # a owns its memory: its views are listed on it
        views = origin if type(origin) is list else []
        a._view_of = views
        root, steps = weakref.ref(a), ()
    else:
        return  # a shares memory in a way that is not recorded: writes into it are refused (root_of)
    remade = _new(Remade)  # Remade(root, steps, views) without __init__'s call (every step's reshapes)
    remade.root, remade.steps, remade.views = root, (*steps, step), views
    out._view_of = remade
    _listed(views, out)


def _listed(views: list, out) -> None:
    """``out`` added to a root's list of views (the dead ones dropped now and then)."""
    views.append(weakref.ref(out))
    n = len(views)
    if n >= _PRUNE_FROM and not n & (n - 1):
        views[:] = [r for r in views if r() is not None]


def steps_of(view) -> tuple:
    """The steps that make ``view`` from its root: ``(op, its parameters)``, op None for an index."""
    origin = view._view_of
    return tuple((None, {"index": i}) for i in origin[1]) if type(origin) is tuple else origin.steps


def root_of(a: Tensor) -> tuple:
    """(root, indices from the root to ``a``, the root's list of views or None) for a write of
    graph values into ``a``; an error where memory is shared in a way that cannot be recorded."""
    origin = getattr(a, "_view_of", None)
    if type(origin) is tuple:
        root = origin[0]()
        if root is None:  # the root is gone: a itself is the root, unless a live view shares a's memory
            for ref in origin[2]:
                other = ref()
                if other is not None and other is not a and a.xp.may_share_memory(other.data, a.data):
                    raise RuntimeError(f"x[...] = a value of the graph, into a view {a._describe()} of a tensor that "
                                       "no longer exists, while another view of its memory does: that view would "
                                       "hold the new values without their graph. Write into a copy "
                                       "(y = x.copy()), or keep the tensor the views were taken from")
            return a, (), None
        if getattr(root, "_view_of", None) is origin[2] and block_of(root.data) is block_of(a.data):
            return root, origin[1], origin[2]
    elif type(origin) is list or a.data.base is None:
        return a, (), origin
    raise RuntimeError(f"x[...] = a value of the graph, into a tensor {a._describe()} that shares its memory "
                       "with another array (a reshape, a transpose or a detached view of another tensor, "
                       "or memory of another library): the other would hold the new values without their "
                       "graph. Assign into the tensor itself (x[1:3][0] = v is x[1] = v), or into a copy "
                       "(y = x.copy())")
