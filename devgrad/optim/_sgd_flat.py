"""SGD (plain, or with momentum, dampening, Nesterov, weight decay, maximize) over a whole
parameter group on the CPU, in a near-constant number of NumPy calls.

On a small network each NumPy call costs about a microsecond whatever its size, and the
per-parameter update (``_kernels.sgd_update``) makes two to six of them per parameter. Here the
gradients of a group's small parameters of one float dtype are gathered into one flat array
with one call, the followed gradient, the momentum buffer and the step are computed once over
flat arrays, and only ``p -= step`` stays one call per parameter: parameters are the user's
arrays. The momentum buffers are views of one flat array per dtype, made with the state:
``state["momentum_buffer"]`` stays a per-parameter array, so ``state_dict``, checkpoints and
``load_state_dict`` (which writes into existing arrays in place) see no change.

Bit for bit the per-parameter update: every operation is elementwise, so each element goes
through the same IEEE operations, with the same numbers, in the same order as in its own
parameter's update.

The layout is used only while it matches the step exactly (the same parameter arrays, every
parameter with a gradient of its shape and dtype, the state holding its views); any other step
(a parameter without a gradient, an array replaced, a step recorded for replay, which traces
views of the arrays) goes to the per-parameter update, which works on the same buffers. A
recorded plan keeps the per-parameter calls: ``cpu_fuse.merge_sgd`` merges them better there
(it moves the gradients themselves into one array, so no gathering call is left).
"""

from __future__ import annotations

import itertools

import numpy as np

from devgrad.core.writes import marks_of, note_marked
from devgrad.optim._adam_flat import _disjoint, followed_gradient
from devgrad.optim._kernels import _rate, sgd_momentum_step

# Elements: a group with a larger parameter keeps the per-parameter update. Gathering a gradient is
# one more pass over its memory, which past a few thousand elements costs more than the call it
# saves; and a group split between the two updates pays the bookkeeping of both, which on the
# networks measured cost more than the calls the flat part saved (2-core x86 CPU, 2026-12-07).
FLAT_MAX = 1 << 11
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _Block:
    """One dtype's small parameters of a group: the flat gradient, scratch and (with momentum)
    momentum buffer, and each parameter's views of them."""

    def __init__(self, index: list, params: list, momentum: bool):
        self.index = index  # positions in the group's entries
        self.params = params  # the parameter arrays the layout was made for
        self.shapes = [p.shape for p in params]
        self.dtype = dtype = params[0].dtype
        sizes = [p.size for p in params]
        self.starts = list(itertools.accumulate(sizes, initial=0))
        total = self.starts[-1]
        self.grad, self.tmp = np.empty(total, dtype), np.empty(total, dtype)
        self.second: np.ndarray | None = None  # Nesterov's decayed or negated gradient, made when first needed
        self.buf = np.zeros(total, dtype) if momentum else None
        self.tmps = self._views(self.tmp)
        self.bufs = self._views(self.buf) if self.buf is not None else None
        self.first = True  # the momentum buffers start as the followed gradient
        self.marks: list | None = None  # the parameters' records of in-place writes (``writes.marks_of``)
        self.lr: float | None = None  # the last Python float rate, and it as a 0-d array (_rate)
        self.rate = np.zeros((), self.dtype)

    def _views(self, flat: np.ndarray) -> list:
        return [flat[a:b].reshape(s) for a, b, s in zip(self.starts, self.starts[1:], self.shapes)]

    def adopt(self, states: list) -> None:
        """Make each state's momentum buffer its view, with the state's values when it has one, and
        its scratch its view of the flat scratch: a step that takes the per-parameter update (one
        being recorded for replay) finds that scratch, which a recorded plan knows as the
        optimizer's own, not read by anything else (``cpu_fuse.merge_sgd`` needs that)."""
        for state, view in zip(states, self.tmps):
            state["_scratch"] = view
        if self.bufs is None:
            return
        for state, view in zip(states, self.bufs):
            if "momentum_buffer" in state:
                np.copyto(view, state["momentum_buffer"])
                self.first = False
            state["momentum_buffer"] = view

    def gradients(self, entries: list) -> list | None:
        """The members' gradients, when each member's entry is the layout's parameter array with a
        gradient of its shape and dtype and a state that holds its momentum buffer view; else None."""
        dtype, bufs, grads = self.dtype, self.bufs, []
        for k, (i, p, shape) in enumerate(zip(self.index, self.params, self.shapes)):
            q, g, state = entries[i]
            if q is not p or g.shape != shape or (g.dtype is not dtype and g.dtype != dtype):
                return None
            if bufs is not None and state.get("momentum_buffer") is not bufs[k]:
                return None
            grads.append(g)
        return grads

    def _rate(self, lr):
        """The learning rate as the update's ufuncs take it (``_kernels._rate``), a Python float's
        0-d array kept until the rate changes."""
        if type(lr) is float and lr == self.lr:  # a NaN rate never equals itself: converted each time
            return self.rate
        rate = _rate(lr, self.tmp)
        if type(lr) is float:
            self.lr, self.rate = lr, rate
        return rate

    def update(self, grads: list, lr, group: dict) -> None:
        """``_kernels.sgd_update`` of each member, over the flat arrays."""
        grad, tmp, buf = self.grad, self.tmp, self.buf
        np.concatenate(grads, axis=None, out=grad)
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        if not (weight_decay or maximize or buf is not None):  # plain SGD, the common case
            np.multiply(grad, self._rate(lr), out=tmp)
            for p, t in zip(self.params, self.tmps):
                p -= t
            return
        nesterov = group["nesterov"]
        out = tmp
        if buf is not None and nesterov and (weight_decay or maximize):
            if self.second is None:
                self.second = np.empty_like(tmp)
            out = self.second
        d = followed_gradient(self.params, grad, out, weight_decay, maximize)
        rate = self._rate(lr)
        if buf is None:
            np.multiply(d, rate, out=tmp)
        else:
            sgd_momentum_step(d, buf, tmp, rate, group["momentum"], group["dampening"], nesterov, self.first)
            self.first = False
        for p, t in zip(self.params, self.tmps):
            p -= t


class Layout:
    """The blocks (one per dtype) of one parameter group."""

    def __init__(self, count: int, blocks: list, momentum: bool):
        self.count = count
        self.blocks = blocks
        self.momentum = bool(momentum)

    def update(self, entries: list, lr, group: dict) -> bool:
        """One SGD step of every parameter when ``entries`` (every parameter of the group, in order)
        fit the layout and the group's momentum is on exactly when the layout has buffers;
        False (nothing done) when they do not fit."""
        if len(entries) != self.count or bool(group["momentum"]) is not self.momentum:
            return False
        gathered = []
        for block in self.blocks:
            grads = block.gradients(entries)
            if grads is None:
                return False
            gathered.append(grads)
        for block, grads in zip(self.blocks, gathered):
            block.update(grads, lr, group)
        return True

    def step(self, params: list, states: dict, group: dict) -> bool:
        """The whole step of the group from its parameters (``Optimizer.step``'s gathering of
        entries and ``update`` in one pass), when the layout is one block of all of them and each
        is a leaf whose array is the layout's, with a gradient of its shape and dtype on its device
        and (with momentum) a state that holds its buffer view: each counted as written in place,
        then updated. False, with nothing done or counted, otherwise."""
        if len(self.blocks) != 1 or len(params) != self.count or bool(group["momentum"]) is not self.momentum:
            return False
        block = self.blocks[0]
        dtype, bufs, grads = block.dtype, block.bufs, []
        for k, (p, data, shape) in enumerate(zip(params, block.params, block.shapes)):
            g = p.grad
            if g is None or p.data is not data or p.grad_fn is not None or g.device is not p.device:
                return False
            g = g.data
            if g.shape != shape or (g.dtype is not dtype and g.dtype != dtype):
                return False
            state = states.get(p)
            if state is None or (bufs is not None and state.get("momentum_buffer") is not bufs[k]):
                return False
            grads.append(g)
        for p in params:  # updated in place: a graph that saved one can no longer backprop
            p._version += 1
        if block.marks is None:
            block.marks = marks_of(block.params)
        else:
            note_marked(block.marks)
        block.update(grads, group["lr"], group)
        return True


def layout(params: list, grads: list, states: list, momentum: bool) -> Layout | None:
    """A layout for a group's parameter arrays (plain NumPy arrays of at most ``FLAT_MAX`` elements,
    each with a gradient of its shape and dtype, so that the step that makes it takes it): with
    ``momentum``, their states must all be without a momentum buffer (fresh) or all hold one like
    the parameter (loaded), and are made to hold views of the flat buffer. None when any
    parameter is left out (see ``FLAT_MAX``), or when parameters share memory (each must see the
    updates before it in the group's order)."""
    if not params or not _disjoint(params):
        return None
    by_dtype: dict = {}
    for i, (p, g) in enumerate(zip(params, grads)):
        if (type(p) is np.ndarray and p.size <= FLAT_MAX and p.dtype in _DTYPES and g.shape == p.shape
                and g.dtype == p.dtype):
            by_dtype.setdefault(p.dtype, []).append(i)
    blocks = []
    for index in by_dtype.values():
        if momentum and not _buffers_fit([states[i] for i in index], [params[i] for i in index]):
            return None
        blocks.append(_Block(index, [params[i] for i in index], momentum))
    if sum(len(block.index) for block in blocks) != len(params):
        return None
    for block in blocks:
        block.adopt([states[i] for i in block.index])
    return Layout(len(params), blocks, momentum)


def _buffers_fit(states: list, params: list) -> bool:
    """Whether none of these states has a momentum buffer, or all have one like their parameter."""
    held = ["momentum_buffer" in state for state in states]
    if not any(held):
        return True
    return all(held) and all(type(b := state["momentum_buffer"]) is np.ndarray and b.shape == p.shape
                             and b.dtype == p.dtype for state, p in zip(states, params))
