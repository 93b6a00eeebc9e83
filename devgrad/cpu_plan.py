"""Record a training step on the CPU as a ``Plan`` and replay it (``CapturedStep`` on the CPU).

``record`` runs the step once for real with every array it touches traced
(``devgrad.cpu_capture``): its inputs, the parameters and their gradients, and the optimizer's
state (moments, step counts, learning-rate buffers) are handed to the step as ``Tracer`` views
of their own memory, so the calls that read and update them land in the plan. Afterwards the
parameters and the state hold their own arrays again, now updated: the recording was a step.
A step that cannot be replayed raises ``CaptureError`` and leaves nothing half-done: every array
outside the plan it had written gets its old contents back, and the gradients their old arrays.
"""

from __future__ import annotations

import functools

import numpy as np

from devgrad import cpu_fold, cpu_fuse
from devgrad.cpu_numpy import converters
from devgrad.backend import CaptureError, recording_for_replay
from devgrad.core import Tensor
from devgrad.core.backward import leaf_watch
from devgrad.random import default_generator
from devgrad.backend.fp_errors import ERRORS, QUIET
from devgrad.cpu_capture import DivergedError, Tracer, _local, _owner, _Recording, _root

__all__ = ["DivergedError", "Plan", "record"]

class Plan:
    """A recorded step: ``replay()`` repeats its NumPy calls and returns what the step returned."""

    def __init__(self, calls: list, result, grads: list, written: list, buffers: list, steps: list):
        self.calls = calls  # as recorded: (function, args, kwargs or None)
        self.steps = steps  # what a replay calls: (function, args) pairs, see ``_compile``
        self.result = result  # what the step returned, its arrays now the plan's buffers
        self.grads = grads  # (parameter, its gradient as a Tensor on the plan's buffer)
        self.params: list = []  # the tensors whose gradients it computes (``record``'s ``params``)
        self.gradless: list = []  # those without a gradient when the step began (it reads no other's)
        self.written = written  # arrays outside the plan's buffers that a replay writes (parameters, state)
        self.buffers = buffers  # the plan's own arrays (kept alive with it)
        self.inputs: list = []  # the static buffers of the step's inputs (see ``feed``)
        self._slots: list = []  # for each input: the (call, argument) places that read it whole, or None
        self._fed: list = []  # for each input: the array the calls read it from now
        self.checked = False  # whether a replay has been checked against an eager step (``CapturedStep``)
        self.steady: list = []  # calls that leave the same bytes every time: run by ``refresh``, not by replays
        self.scratch: set = set()  # which of ``written`` are the optimizer's scratch, read by nothing after the step
        self.rates = 0  # which change of the learning rates its steady calls last saw (``CapturedStep``)

    def take_inputs(self, static: list) -> None:
        """Tell the plan which of its arrays are the step's inputs (``feed`` fills them)."""
        self.inputs, self._fed = list(static), list(static)
        self._slots = _input_slots(self, self.inputs)

    def feed(self, arrays) -> None:
        """This call's input arrays. One that the plan's calls read only whole, given with its static
        buffer's layout, is read from where it is (the calls are pointed at it: no copy); any other
        is copied into its static buffer. The same array as in the last call costs nothing."""
        for k, array in enumerate(arrays):
            if array is self._fed[k]:
                continue
            static = self.inputs[k]
            if self._slots[k] is not None and _same_layout(array, static):
                self._point(k, array)
                continue
            if self._fed[k] is not static:
                self._point(k, static)
            if array is not static:
                np.copyto(static, array)

    def refresh(self) -> None:
        """Run the calls whose results change only with the learning-rate buffers (after
        ``refresh_lr``: a new rate); the plan runs them once when it is made."""
        token = ERRORS.set(QUIET)
        try:
            for fn, args in self.steady:
                fn(*args)
        finally:
            ERRORS.reset(token)

    def _point(self, k: int, array) -> None:
        for i, j in self._slots[k]:
            fn, args = self.steps[i]
            self.steps[i] = (fn, (*args[:j], array, *args[j + 1:]))
        self._fed[k] = array

    def replay(self):
        """Run the recorded calls; raises ``DivergedError`` (before writing anything outside the plan's
        buffers) when a recorded data-dependent branch goes the other way."""
        token = ERRORS.set(QUIET)  # as the recorded ops' forwards and backward ran: inf and NaN are values
        try:
            for fn, args in self.steps:
                fn(*args)
        finally:
            ERRORS.reset(token)
        for p, g in self.grads:
            p.grad = g
        return self.result


def _same_layout(a, b) -> bool:
    return (type(a) is np.ndarray and a.shape == b.shape and a.dtype == b.dtype and a.strides == b.strides
            and a.flags.aligned)


def _whole(a: np.ndarray, b: np.ndarray) -> bool:
    return a.ctypes.data == b.ctypes.data and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype


def _input_slots(plan: Plan, static: list) -> list:
    """For each input: where the replay's calls take it as a whole argument, or None where the plan
    holds it otherwise too (a view, inside another argument, a keyword, its results or writes),
    which only a copy into its static buffer serves."""
    slots: list = [[] for _ in static]
    others = _arrays_of([plan.written, [g.data for _, g in plan.grads], plan.result])
    for i, (fn, args) in enumerate(plan.steps):
        others += _arrays_of([getattr(fn, "keywords", None), getattr(fn, "args", None)])
        for j, a in enumerate(args):
            if not isinstance(a, np.ndarray):
                others += _arrays_of(a)
                continue
            for k, buf in enumerate(static):
                if np.may_share_memory(a, buf):
                    if _whole(a, buf) and slots[k] is not None:
                        slots[k].append((i, j))
                    else:
                        slots[k] = None
    for k, buf in enumerate(static):
        if any(np.may_share_memory(a, buf) for a in others):
            slots[k] = None
    return slots


def _state_arrays(optimizer) -> list:
    """(dict or list, key) of every array in the optimizer's per-parameter state and its device
    learning rates: what the step updates besides the parameters."""
    slots: list[tuple] = []
    if optimizer is None:
        return slots
    for state in optimizer.state.values():
        slots += [(state, k) for k, v in state.items() if isinstance(v, np.ndarray)]
    for entry in optimizer._lr_buffers.values():
        if isinstance(entry[1], np.ndarray):
            slots.append((entry, 1))
    return slots


def record(fn, inputs: tuple, device, params: list, optimizer, others: tuple | list = ()) -> Plan:
    """Run ``fn(*inputs)`` once (a real step) and return its plan; ``inputs`` are Tensors whose
    arrays the caller refills before each replay. ``params``: the tensors whose gradients the plan
    computes (a replay hands them theirs); ``others``: more tensors it may read or write (frozen
    parameters, buffers). Raises CaptureError (state restored) when the step cannot be replayed."""
    rec = _Recording()
    generator = default_generator()
    rec.rng = generator, generator.bit_generator.state  # put back by ``_undo``
    slots = _state_arrays(optimizer)
    originals = [slot[k] for slot, k in slots]
    params, held = list(params), len(params)
    params += others  # traced alike; only the first ``held`` take gradients
    datas = [p.data for p in params]
    param_views = [d.view(Tracer) for d in datas]
    old_grads = [p.grad for p in params]
    entry = [g.data for g in old_grads if g is not None]  # the gradients the step starts with
    traced_inputs = tuple(Tensor._make(t.data.view(Tracer), device) for t in inputs)
    plain_np, traced_np = converters()
    views: list = []
    watch: list = []  # (leaf, its gradient before) for each leaf a backward walk of the step gave one
    try:
        for slot, k in slots:
            slot[k] = slot[k].view(Tracer)
            views.append(slot[k])
        for i, (p, view) in enumerate(zip(params, param_views)):
            p.data = view
            if i < held and p.grad is not None:
                p.grad = Tensor._make(p.grad.data.view(Tracer), device)
        _local.recording, leaf_watch.leaves = rec, watch
        for name, f in traced_np.items():
            setattr(np, name, f)
        with recording_for_replay(device):
            result = fn(*traced_inputs)
    except BaseException:
        _undo(rec, params, old_grads, watch)
        raise
    finally:
        _local.recording = leaf_watch.leaves = None
        for name, f in plain_np.items():
            setattr(np, name, f)
        replaced = _put_back(slots, originals, views, params, datas, param_views, held)
    try:
        _check(rec, replaced)
        _check_entry_gradients(rec, entry)
        result = _untraced(result, device)
        _check_leaves(watch, params)
        grads = []
        for p in params[:held]:
            if p.grad is not None:
                p.grad = Tensor._make(_plain_array(p.grad.data), device)
                grads.append((p, p.grad))
    except BaseException:
        _undo(rec, params, old_grads, watch)
        raise
    private = [original for (slot, k), original in zip(slots, originals) if isinstance(k, str) and k.startswith("_")]
    rates = [original for (slot, _), original in zip(slots, originals) if isinstance(slot, list)]
    plan = _plan(rec, result, grads, [t.data for t in inputs], private, rates)
    plan.params = params[:held]
    plan.gradless = [p for p, g in zip(plan.params, old_grads) if g is None]
    return plan


def _check_leaves(watch: list, params: list) -> None:
    """Refuse a step that gave a gradient to a tensor outside ``params``: a replay would not hand
    it its gradient. (``CapturedStep`` passes every leaf the step's eager call gave one.)"""
    known = {id(p) for p in params}
    if any(id(leaf) not in known for leaf, _ in watch):
        raise CaptureError("the step gave a gradient to a tensor it had not given one in its first, eager call: "
                           "a replay would not hand it its gradient")


def _plan(rec: _Recording, result, grads: list, inputs: list, private: list, rates: list) -> Plan:
    """The plan of a recording: its calls compiled (``_compile``) and passed through ``cpu_fuse``'s
    and ``cpu_fold``'s passes. ``private``: optimizer state nothing outside the step reads;
    ``rates``: the learning-rate buffers (rewritten only by ``refresh_lr``)."""
    made: set = set()
    steps = cpu_fuse.compiled(rec, made)
    steps, freed, moved = cpu_fuse.merge_sgd(steps, rec.buffers, private, functools.partial(_flat, rec))
    for _, g in grads:
        g.data = moved(g.data)
    unwritten = {(a.ctypes.data, a.nbytes) for a in freed}  # scratch the merged update no longer writes
    written = [target for target, _ in rec.saved if (target.ctypes.data, target.nbytes) not in unwritten]
    result = cpu_fuse.moved_result(result, moved)
    visible = [*inputs, *written, *(g.data for _, g in grads), *_arrays_of(result)]
    steps = cpu_fold.repeats(cpu_fold.guards(cpu_fuse.shared_views(steps)), rec.buffers, visible)
    steps, steady = cpu_fold.hoist(steps, rec.buffers, visible, rates, made)
    steps = cpu_fuse.shared_views(cpu_fuse.scalars(steps))
    plan = Plan(rec.plan, result, grads, written, rec.buffers, steps)
    # the optimizer's scratch (an eager step may take another path and leave it alone): not compared
    plan.scratch = {i for i, a in enumerate(written) if any(np.may_share_memory(a, s) for s in private)}
    plan.steady = steady
    plan.refresh()
    plan.take_inputs(inputs)
    return plan


def _flat(rec: _Recording, size: int, dtype) -> np.ndarray:
    """A new one-dimensional buffer of the plan (placed by ``_owner``)."""
    rec.buffers.append(_owner(rec, (size,), np.dtype(dtype), "C", np.ndarray))
    return rec.buffers[-1]


def _put_back(slots, originals, views, params, datas, param_views, held: int) -> list:
    """Give the state and the parameters their own arrays back; returns what the step replaced
    (rebound instead of updating in place), which a replay could not follow."""
    replaced = []
    for (slot, k), original, view in zip(slots, originals, views):
        if slot[k] is not view:
            replaced.append(f"optimizer state '{k}'" if isinstance(slot, dict) else "a learning-rate buffer")
        slot[k] = original
    for i, (p, data, view) in enumerate(zip(params, datas, param_views)):
        if p.data is not view:
            replaced.append(f"parameter {i}'s array" if i < held else "a buffer's or a frozen parameter's array")
        p.data = data
    return replaced


def _check(rec: _Recording, replaced: list) -> None:
    if replaced:
        raise CaptureError(f"the step replaced {', '.join(replaced)} instead of updating it in place: a replay "
                           "would keep updating the old array")
    if rec.problems:
        raise CaptureError(f"{rec.problems[0]} while the step was being recorded: a replay could not repeat it")


def _check_entry_gradients(rec: _Recording, entry: list) -> None:
    """Refuse a step that reads the gradients its parameters had when it began (it adds to them):
    a replay would read those of the recording, not the ones the parameters have then."""
    roots: dict = {}
    for e in entry:
        roots.setdefault(id(_root(e)), []).append(e)
    for fn, args, kwargs in rec.plan:
        for a in _arrays_of([args, kwargs, getattr(fn, "args", None), getattr(fn, "keywords", None)]):
            if any(np.may_share_memory(a, e) for e in roots.get(id(_root(a)), ())):
                raise CaptureError("the step adds to the gradients the parameters had when it began (backward "
                                   "without zero_grad before it, or after zero_grad(set_to_none=False), which keeps "
                                   "their arrays): a replay would add to the recording's arrays instead; set them to "
                                   "None first (opt.zero_grad() in the step)")


def _undo(rec: _Recording, params: list, old_grads: list, watch: list) -> None:
    """Undo a recording that failed: old contents back into every array it wrote, old gradients
    (``watch``: those of the other leaves the step gave one)."""
    for target, before in reversed(rec.saved):
        np.copyto(target, before)
    generator, state = rec.rng  # the random numbers the step drew (before a refusal) are drawn again
    generator.bit_generator.state = state
    for leaf, before in reversed(watch):
        leaf.grad = before
    for p, g in zip(params, old_grads):
        p.grad = g


def _plain_array(a):
    return a.view(np.ndarray) if isinstance(a, Tracer) else a


def _untraced(result, device):
    """The step's return value with its arrays as the plan's (plain) buffers."""
    if isinstance(result, Tensor):
        return Tensor._make(_plain_array(result.data), device)
    if isinstance(result, tuple | list):
        return type(result)(_untraced(r, device) for r in result)
    if isinstance(result, dict):
        return {k: _untraced(v, device) for k, v in result.items()}
    if isinstance(result, np.ndarray):
        return _plain_array(result)
    return result


def snapshot(plan: Plan) -> list:
    """Copies of what a replay writes outside its buffers (to compare or restore)."""
    return [a.copy() for a in plan.written]


def restore(plan: Plan, copies: list) -> None:
    for a, c in zip(plan.written, copies):
        np.copyto(a, c)


def same_bits(a, b) -> bool:
    """Bit-for-bit equality of two arrays (NaNs with the same bits are equal)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()



def _arrays_of(value) -> list:
    """Every array in ``value``: itself, a Tensor's data, or inside tuples, lists and dicts."""
    if isinstance(value, Tensor):
        return [value.data]
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, tuple | list):
        return [a for v in value for a in _arrays_of(v)]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _arrays_of(v)]
    return []


def first_difference(plan: Plan, after: list, params: list, grads: list, eager_out, replayed) -> str | None:
    """Where a replay's results differ from an eager step's, bit for bit (None: nowhere). ``after``:
    ``snapshot`` after the eager step; ``grads``: copies of its gradients."""
    for i, (a, expected) in enumerate(zip(plan.written, after)):
        if i not in plan.scratch and not same_bits(a, expected):
            return f"array {i} of {len(after)} the step updates in place (shape {a.shape}, {a.dtype})"
    for i, (p, expected) in enumerate(zip(params, grads)):
        if expected is not None and (p.grad is None or not same_bits(p.grad.data, expected)):
            return f"the gradient of parameter {i}"
    ours, theirs = _arrays_of(replayed), _arrays_of(eager_out)
    if len(ours) != len(theirs) or not all(same_bits(a, b) for a, b in zip(ours, theirs)):
        return "what the step returned"
    return None
