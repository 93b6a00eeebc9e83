"""Adam/AdamW over a whole parameter group on the CPU, in a near-constant number of NumPy calls.

On a small network each NumPy call costs about a microsecond whatever its size, and the
per-parameter update (``_kernels.adam_update``) makes about twenty of them per parameter. Here
the moments of a group's small parameters of one float dtype are views of one flat array each,
made with the state: the gradients are gathered into another flat array with one call, the
moment updates and the step run once over the flat arrays, and only ``p -= step`` (and AdamW's
``p *= 1 - lr·weight_decay``) stays one call per parameter: parameters are the user's arrays.
``state["exp_avg"]`` and the others stay per-parameter arrays (the views), so ``state_dict``,
checkpoints and ``load_state_dict`` (which writes into existing arrays in place) see no change.

Bit for bit the per-parameter update: every element goes through the same IEEE operations in
the same order, and the bias corrections it is divided or multiplied by are the very values its
parameter's own update uses (float64 for √(1 − β₂ᵗ), the learning rate's dtype rule for the
rate): one scalar when all step counts agree, else each parameter's value copied to its
elements. A capturable optimizer's step counts are views of one float64 vector per block,
advanced with one call; β₁ᵗ and β₂ᵗ are one 0-d power per count (``_kernels.bias_power``), as the
per-parameter update computes them: NumPy's power of a vector can differ by an ulp.

A layout that no longer matches the state (an array replaced, a parameter without a gradient
this step, another dtype) hands the group back to the per-parameter update, which works on the
same views; it is never rebuilt under arrays something may hold (a recorded CPU plan).
"""

from __future__ import annotations

import itertools

import numpy as np

from devgrad.optim._kernels import _effective_grad, _weak, adam_moments, bias_power

# Elements: a larger parameter keeps its own update. Gathering its gradient is one more pass over
# memory, which for big layers costs more than the calls saved.
FLAT_MAX = 1 << 14
# Mean elements per parameter up to which per-parameter corrections (steps that differ, or any
# capturable step) are copied onto the elements (one call each) rather than applied parameter by
# parameter (one call per parameter each, no pass over a vector of copies).
SPREAD_MAX = 1 << 8
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


class _Block:
    """One dtype's small parameters of a group: their flat moments, scratch and (capturable) step
    counts, and each parameter's views of them."""

    def __init__(self, index: list, shapes: list, dtype, amsgrad: bool, capturable: bool):
        self.index = index  # positions in the group's entries
        self.shapes = shapes
        sizes = [int(np.prod(s)) for s in shapes]
        self.starts = list(itertools.accumulate(sizes, initial=0))
        total = self.starts[-1]
        self.m, self.v = np.zeros(total, dtype), np.zeros(total, dtype)
        vmax = np.zeros(total, dtype) if amsgrad else None
        self.vmax = vmax
        self.grad, self.tmp = np.empty(total, dtype), np.empty(total, dtype)
        self.second: np.ndarray | None = None  # the L2-decayed gradient, made when first needed
        steps = np.zeros(len(index), np.float64) if capturable else None
        self.steps = steps
        self.owner = np.repeat(np.arange(len(index), dtype=np.intp), sizes)  # each element's parameter
        self.spreads = total <= SPREAD_MAX * len(index)  # see SPREAD_MAX
        self.copies: dict = {}  # dtype -> the per-element copies of a correction, made when first needed
        self.views = {"exp_avg": self._views(self.m), "exp_avg_sq": self._views(self.v),
                      "max_exp_avg_sq": self._views(vmax) if vmax is not None else [None] * len(index)}
        self.tmps = self._views(self.tmp)
        self.step_views = [steps[k:k + 1].reshape(()) for k in range(len(index))] if steps is not None else None

    def _views(self, flat: np.ndarray) -> list:
        return [flat[a:b].reshape(s) for a, b, s in zip(self.starts, self.starts[1:], self.shapes)]

    def adopt(self, states: list) -> None:
        """Copy each state's moments (and capturable step count) into the flat arrays and make the
        state's entries the views."""
        for k, state in enumerate(states):
            for key in _MOMENTS:
                view = self.views[key][k]
                if view is not None:
                    if key in state:
                        np.copyto(view, state[key])
                    state[key] = view
            if self.steps is not None and self.step_views is not None:
                self.steps[k] = float(state.get("step", 0))
                state["step"] = self.step_views[k]

    def matches(self, entries: list) -> bool:
        """Whether each member's gradient fits its views and its state still holds them (a step being
        recorded for replay holds them through views of its own: their ``base``)."""
        views, dtype = self.views, self.m.dtype
        ms, vs, vmaxs = views["exp_avg"], views["exp_avg_sq"], views["max_exp_avg_sq"]
        steps: list = self.step_views or [None] * len(self.index)
        for k, i in enumerate(self.index):
            _, g, state = entries[i]
            if g.shape != self.shapes[k] or g.dtype != dtype:
                return False
            if (state.get("exp_avg") is not ms[k] or state.get("exp_avg_sq") is not vs[k]
                    or state.get("max_exp_avg_sq") is not vmaxs[k]
                    or (steps[k] is not None and state.get("step") is not steps[k])):
                held = [_holds(state.get(key), views[key][k]) for key in _MOMENTS]
                if not all(held) or (steps[k] is not None and not _holds(state.get("step"), steps[k])):
                    return False
        return True

    def arrays(self, like) -> tuple:
        """(m, v, vmax, grad, tmp, steps) as arrays of ``like``'s class: a recording for replay traces
        the calls of the arrays it handed to the step, so the flat arrays go through the same class."""
        arrays = (self.m, self.v, self.vmax, self.grad, self.tmp, self.steps)
        cls = type(like)
        if cls is np.ndarray:
            return arrays
        return tuple(None if a is None else a.view(cls) for a in arrays)

    def second_buffer(self, like) -> np.ndarray:
        """The scratch for the L2-decayed gradient, as ``like``'s class (see ``arrays``)."""
        if self.second is None:
            self.second = np.empty_like(self.tmp)
        return self.second if type(like) is np.ndarray else self.second.view(type(like))

    def scale(self, op, tmp, value) -> None:
        """``op(tmp, value, out=tmp)`` (divide or multiply) with ``value`` a number, or a vector of
        one number per parameter, each applied to that parameter's elements. (Such a vector comes
        from the step counts: where a recording traces those, it traces these calls too.)"""
        if getattr(value, "ndim", 0) == 0:
            op(tmp, value, out=tmp)
        elif self.spreads:
            buf = self.copies.get(value.dtype)
            if buf is None:
                buf = self.copies[value.dtype] = np.empty(self.tmp.size, value.dtype)
            np.take(value, self.owner, out=buf, mode="clip")
            op(tmp, buf, out=tmp)
        else:
            for k, t in enumerate(self.tmps):
                op(t, value[k, ...], out=t)


def _holds(value, view) -> bool:
    return value is view or (value is not None and type(value) is not np.ndarray
                             and getattr(value, "base", None) is view)


class Layout:
    """The blocks of one parameter group, and the positions of the parameters left to the
    per-parameter update (too large, another dtype)."""

    def __init__(self, count: int, blocks: list, rest: list):
        self.count = count
        self.blocks = blocks
        self.rest = rest

    def matches(self, entries: list) -> bool:
        """Whether ``entries`` (every parameter of the group, in order) fit the layout."""
        return len(entries) == self.count and all(block.matches(entries) for block in self.blocks)

    def update(self, entries: list, lr, group: dict, decoupled: bool) -> list:
        """One Adam step of every block's parameters; returns the entries left to the per-parameter update."""
        for block in self.blocks:
            _update_block(block, [entries[i] for i in block.index], lr, group, decoupled)
        return [entries[i] for i in self.rest]


def layout(params: list, states: list, amsgrad: bool, capturable: bool) -> Layout | None:
    """A layout for a group's parameter arrays (plain NumPy arrays) whose states are all fresh (then
    ``amsgrad`` decides the third moment) or all hold the same moments (loaded: whether they hold
    it decides), their states made views of it; None when no dtype has two small parameters, or
    when parameters share memory (each must see the updates before it in the group's order)."""
    if not _disjoint(params):
        return None
    by_dtype: dict = {}
    for i, p in enumerate(params):
        if type(p) is np.ndarray and p.size <= FLAT_MAX and p.dtype in _DTYPES:
            by_dtype.setdefault(p.dtype, []).append(i)
    blocks = []
    for dtype, index in by_dtype.items():
        members = [states[i] for i in index]
        keys = _held(members, [params[i] for i in index])
        if len(index) < 2 or keys is None:
            continue
        third = "max_exp_avg_sq" in keys if keys else amsgrad
        block = _Block(index, [params[i].shape for i in index], dtype, third, capturable)
        block.adopt(members)
        blocks.append(block)
    if not blocks:
        return None
    placed = {i for block in blocks for i in block.index}
    return Layout(len(params), blocks, [i for i in range(len(params)) if i not in placed])


def _disjoint(arrays: list) -> bool:
    """Whether no two of these arrays' memory extents overlap."""
    bounds = sorted(np.lib.array_utils.byte_bounds(a) for a in arrays if a.size)
    return all(end <= start for (_, end), (start, _) in itertools.pairwise(bounds))


def _held(states: list, params: list) -> tuple | None:
    """The moments that every one of these states holds, each an array like its parameter (none for
    fresh states); None when they differ."""
    held = {tuple(k for k in _MOMENTS if k in state) for state in states}
    if len(held) != 1:
        return None
    keys = held.pop()
    if keys and keys[:2] != _MOMENTS[:2]:
        return None
    for state, p in zip(states, params):
        for k in keys:
            if type(state[k]) is not np.ndarray or state[k].shape != p.shape or state[k].dtype != p.dtype:
                return None
    return keys


def _update_block(block: _Block, members: list, lr, group: dict, decoupled: bool) -> None:
    """``_kernels.adam_update`` of each member (param array, grad array, state), over the flat arrays."""
    b1, b2 = group["betas"]
    weight_decay, maximize = group["weight_decay"], group["maximize"]
    params = [p for p, _, _ in members]
    like = members[0][2]["exp_avg"]
    m, v, vmax, grad, tmp, steps = block.arrays(like)
    if weight_decay and decoupled:
        factor = _weak(1.0 - lr * weight_decay, tmp)
        for p in params:
            p *= factor
        weight_decay = 0.0
    np.concatenate([g for _, g, _ in members], axis=None, out=grad)
    g = followed_gradient(params, grad, block.second_buffer(like) if weight_decay else grad, weight_decay,
                          maximize)
    v = adam_moments(g, m, v, vmax, tmp, b1, b2)
    bias2_sqrt, rate = _corrections(members, steps, lr, b1, b2, tmp)
    np.sqrt(v, out=tmp)
    block.scale(np.divide, tmp, bias2_sqrt)
    tmp += group["eps"]
    np.divide(m, tmp, out=tmp)
    block.scale(np.multiply, tmp, rate)
    for p, t in zip(params, block.tmps):
        p -= t


def followed_gradient(params: list, grad: np.ndarray, out: np.ndarray, weight_decay: float, maximize: bool):
    """The gradient an update follows, over a block's flat arrays: ``_kernels._effective_grad`` with
    the parameters gathered into ``out`` first where it reads them (weight decay); ``out`` may be
    ``grad`` itself when there is none."""
    if weight_decay:
        np.concatenate(params, axis=None, out=out)
    return _effective_grad(grad, out, weight_decay, maximize, out)


def _corrections(members: list, steps, lr, b1: float, b2: float, tmp) -> tuple:
    """Advance the members' step counts; (√(1 − β₂ᵗ), lr/(1 − β₁ᵗ) in ``tmp``'s dtype): the numbers
    ``adam_update`` computes when all counts agree, else vectors of each member's."""
    if steps is not None:  # capturable: the counts are 0-d views of one vector
        steps += 1
        # β₁ᵗ and β₂ᵗ as ``adam_update`` computes them, a power of each 0-d count: NumPy's power of a
        # vector may round an element otherwise (its SIMD loops: an ulp on AVX-512 machines)
        counts = [state["step"] for _, _, state in members]
        powers = [bias_power(b1, c) for c in counts] + [bias_power(b2, c) for c in counts]
        bias = 1.0 - np.stack(powers).reshape(2, len(counts))
        return np.sqrt(bias[1]), _weak(lr / bias[0], tmp)
    counts = []
    for _, _, state in members:
        state["step"] = count = state.get("step", 0) + 1
        counts.append(count)
    first = counts[0]
    if counts.count(first) == len(counts):
        return np.sqrt(1.0 - bias_power(b2, first)), _weak(lr / (1.0 - bias_power(b1, first)), tmp)
    bias2 = np.array([np.sqrt(1.0 - bias_power(b2, c)) for c in counts], np.float64)
    return bias2, np.array([_weak(lr / (1.0 - bias_power(b1, c)), tmp) for c in counts], tmp.dtype)
