"""Passes over a recorded CPU plan that drop calls a replay need not make (``devgrad.cpu_plan`` runs
them), found from the memory each call reads and writes; the bytes every call leaves are the same.

- ``guards``: a comparison of two 0-d values whose result only a guard reads (``if total !=
  total:``, a label range check) is made by the guard itself, in Python: both values convert
  exactly (float32/float64 to a float, integers to an int), so the outcome is NumPy's, without
  a ufunc call into a 0-d buffer and a byte string compared.
- ``repeats``: a call that repeats an earlier one on inputs unchanged since (a loss summed once
  for its NaN check and once for its mean) is dropped, its readers pointed at the first output.
- ``hoist``: a call whose inputs never change from one replay to the next (numbers the compiler
  made, ``cpu_fuse.constants``; buffers only such calls write; the learning-rate buffers, which
  only ``refresh_lr`` rewrites) and whose outputs no other call writes leaves the same bytes on
  every replay: it runs when the plan is made and again when the rates change (``Plan.refresh``),
  not on every replay (a loss's seed gradient of 1 times its 1/n scale, the rate cast to float32).
"""

from __future__ import annotations

import bisect
import functools
import operator

import numpy as np
from numpy.lib.array_utils import byte_bounds

from devgrad.cpu_capture import DivergedError, _same_bytes
from devgrad.cpu_fuse import arrays_in

__all__ = ["guards", "hoist", "repeats"]

_COMPARISONS = {np.less: operator.lt, np.less_equal: operator.le, np.greater: operator.gt,
                np.greater_equal: operator.ge, np.equal: operator.eq, np.not_equal: operator.ne}


def _span(a: np.ndarray) -> tuple[int, int]:
    lo, hi = byte_bounds(a)
    return lo, hi


def _meets(a: np.ndarray, spans: list) -> bool:
    """Whether ``a`` may share a byte with any of ``spans`` (bounds: a conservative answer)."""
    lo, hi = _span(a)
    return lo < hi and any(lo < h and s < hi for s, h in spans)


def _within(a: np.ndarray, spans: list) -> bool:
    lo, hi = _span(a)
    return any(s <= lo and hi <= h for s, h in spans)


def _is_reduce(fn) -> bool:
    return isinstance(getattr(fn, "__self__", None), np.ufunc) and getattr(fn, "__name__", "") == "reduce"


def _io(fn, args: tuple) -> tuple[list, list, bool]:
    """(arrays a step reads, arrays it writes, whether that is known); an unknown call counts as
    reading and writing every array it holds."""
    if type(fn) is np.ufunc and len(args) == fn.nin + fn.nout:
        return arrays_in(args[:fn.nin]), arrays_in(args[fn.nin:]), True
    if fn is np.copyto and len(args) >= 2:
        return arrays_in(args[1:]), arrays_in(args[:1]), True
    if fn in (np.dot, np.matmul) and len(args) == 3:
        return arrays_in(args[:2]), arrays_in(args[2:]), True
    if _is_reduce(fn) and len(args) == 5:
        return arrays_in(args[:1]), arrays_in(args[3:4]), True
    if fn is _same_bytes:
        return arrays_in(args[:1]), [], True
    if (type(fn) is functools.partial and type(fn.func) is np.ufunc and not fn.args
            and fn.keywords.keys() == {"out"}):
        return arrays_in(args), arrays_in(fn.keywords["out"]), True
    held = arrays_in(fn, args)
    return held, held, False


# -- guards ----------------------------------------------------------------------------------

def _compared(op, x, y, expected: bool) -> None:
    """Replay step for a recorded comparison read into Python: the same outcome, or stop."""
    if op(x(), y()) is not expected:
        raise DivergedError


def _same_nan(x, nan: bool) -> None:
    """Replay step for ``x != x`` read into Python: x is NaN as recorded (``nan``), or stop."""
    value = x()
    if (value != value) is not nan:  # noqa: PLR0124 - NaN is the one value unequal to itself
        raise DivergedError


def _exact_value(a, dtype: np.dtype):
    """A callable giving ``a``'s value exactly as a Python number (an array's ``item``), or None."""
    if isinstance(a, np.ndarray):
        return a.item if a.shape == () and a.dtype == dtype else None
    if type(a) is int and dtype.kind in "iu" and np.iinfo(dtype).min <= a <= np.iinfo(dtype).max:
        return functools.partial(int, a)
    return None


def guards(steps: list) -> list:
    """``steps`` with each 0-d comparison that only the guard after it reads folded into that guard."""
    out, i = [], 0
    while i < len(steps):
        fused = _guard(steps, i) if i + 1 < len(steps) else None
        if fused is None:
            out.append(steps[i])
            i += 1
        else:
            out.append(fused)
            i += 2
    return out


def _guard(steps: list, i: int) -> tuple | None:
    (fn, args), (guard, checked) = steps[i], steps[i + 1]
    if fn not in _COMPARISONS or guard is not _same_bytes or len(args) != 3 or checked[0] is not args[2]:
        return None
    flag = args[2]
    dtypes = {a.dtype for a in args[:2] if isinstance(a, np.ndarray)}
    if (not isinstance(flag, np.ndarray) or flag.shape != () or flag.dtype != np.bool_ or len(dtypes) != 1
            or checked[1] not in (b"\x00", b"\x01")):
        return None
    dtype = dtypes.pop()
    if not (dtype.kind in "iu" or (dtype.kind == "f" and dtype.itemsize <= 8)):
        return None  # a longdouble's item() rounds
    x, y = (_exact_value(a, dtype) for a in args[:2])
    if x is None or y is None or any(np.may_share_memory(flag, a) for k, (f, a_) in enumerate(steps)
                                     if k not in (i, i + 1) for a in arrays_in(f, a_)):
        return None
    outcome = checked[1] == b"\x01"
    if args[0] is args[1] and fn in (np.equal, np.not_equal) and dtype.kind == "f":  # x != x: is x NaN
        return _same_nan, (x, outcome if fn is np.not_equal else not outcome)
    return _compared, (_COMPARISONS[fn], x, y, outcome)


# -- repeats ---------------------------------------------------------------------------------

def _signature(fn, args: tuple):
    """What decides a call's result, its output aside (arrays by identity), or None: not a call
    this pass compares."""
    if type(fn) is np.ufunc and fn.nout == 1 and len(args) == fn.nin + 1:
        inputs, out = args[:-1], args[-1]
        rest: tuple = ()
    elif _is_reduce(fn) and len(args) == 5:
        inputs, out = args[:1], args[3]
        axis = args[1]
        if inputs[0].ndim == 1 and axis in (None, 0, -1, (0,), (-1,)):
            axis = 0  # one axis: all of them
        rest = (axis if not isinstance(axis, list) else tuple(axis), args[2], args[4])
    else:
        return None
    if not isinstance(out, np.ndarray) or not all(isinstance(a, np.ndarray | int | float) for a in inputs):
        return None
    ids = tuple(("a", id(a)) if isinstance(a, np.ndarray) else (type(a), a) for a in inputs)
    return fn, ids, rest, out.shape, out.strides, out.dtype


def repeats(steps: list, buffers: list, visible: list) -> list:
    """``steps`` without calls that repeat an earlier one whose inputs and output nothing wrote since."""
    steps = list(steps)
    where, seen = _Map(buffers), visible
    keys = [_signature(*step) for step in steps]
    j = 0
    while j < len(steps):
        i = _earlier(steps, keys, j, where, seen)
        if i is None:
            j += 1
            continue
        first, again = _output(steps[i]), _output(steps[j])
        del steps[j], keys[j]
        for k in range(j, len(steps)):
            fn, args = steps[k]
            if any(a is again for a in args):
                steps[k] = (fn, tuple(first if a is again else a for a in args))
                keys[k] = _signature(*steps[k])
    return steps


def _output(step: tuple) -> np.ndarray:
    fn, args = step
    return args[-1] if type(fn) is np.ufunc else args[3]


def _only_read_after(steps: list, j: int, again: np.ndarray) -> bool:
    """Whether ``again`` (step j's output) is met, after step j, only as a whole positional argument
    of calls that read it, and before it nowhere (a read there would see the last replay's value)."""
    for k, (fn, args) in enumerate(steps):
        if k == j:
            continue
        held = arrays_in(fn, args)
        if any(a is not again and np.may_share_memory(a, again) for a in held):
            return False
        uses = sum(a is again for a in held)
        if uses and (k < j or uses != sum(a is again for a in args) or any(w is again for w in _io(fn, args)[1])):
            return False
    return True


def _earlier(steps: list, keys: list, j: int, where: _Map, seen: list) -> int | None:
    """The step before ``steps[j]`` that it repeats, where dropping ``steps[j]`` is safe; or None."""
    key = keys[j]
    if key is None:
        return None
    i = next((i for i in range(j - 1, -1, -1) if keys[i] == key), None)
    if i is None:
        return None
    again, first, inputs = _output(steps[j]), _output(steps[i]), _io(*steps[i])[0]
    if where.home(again) is None or _meets(again, [_span(a) for a in seen]) or not _only_read_after(steps, j, again):
        return None
    between = [_span(w) for fn, args in steps[i + 1:j] for w in _io(fn, args)[1]]
    others = [_span(w) for k, (fn, args) in enumerate(steps) if k != i for w in _io(fn, args)[1]]
    if (any(np.may_share_memory(a, first) for a in inputs) or _meets(first, others)
            or any(_meets(a, between) for a in inputs)):
        return None
    return i


# -- hoist -----------------------------------------------------------------------------------

class _Map:
    """Which of the plan's buffers holds an array (``home``), and spans (of writes, of what the
    caller sees) filed by that buffer, so that a question about an array looks at its own buffer's
    few entries (arrays outside every buffer: one list of their own)."""

    def __init__(self, buffers: list):
        self.spans: list = []
        for lo, hi in sorted(_span(b) for b in buffers if b.size):
            if self.spans and lo < self.spans[-1][1]:  # buffers that share bytes count as one
                self.spans[-1] = (self.spans[-1][0], max(hi, self.spans[-1][1]))
            else:
                self.spans.append((lo, hi))
        self.starts = [lo for lo, _ in self.spans]

    def home(self, a: np.ndarray) -> int | None:
        lo, hi = _span(a)
        k = bisect.bisect_right(self.starts, lo) - 1
        return k if k >= 0 and hi <= self.spans[k][1] else None

    def filed(self, arrays) -> dict:
        """{home: [(tag, span)]} for (tag, array) pairs."""
        out: dict = {}
        for tag, a in arrays:
            out.setdefault(self.home(a), []).append((tag, _span(a)))
        return out


def hoist(steps: list, buffers: list, visible: list, sources: list, made: set) -> tuple[list, list]:
    """(the steps a replay runs, the steps that give the same bytes every time, in their order).

    ``buffers``: the plan's own arrays; ``visible``: arrays the caller sees (results, gradients,
    inputs, what a replay writes outside its buffers); ``sources``: arrays outside the plan that
    change only between ``Plan.refresh`` calls (learning rates); ``made``: ids of arrays made
    by the compiler that nothing else holds (constants)."""
    io = [_io(fn, args) for fn, args in steps]
    where = _Map(buffers)
    writes = where.filed((k, w) for k, (_, ws, _) in enumerate(io) for w in ws)
    seen = where.filed((None, a) for a in visible)
    fed = [_span(a) for a in sources]
    steady: set[int] = set()

    def writers(a, home) -> set:
        return {k for k, span in writes.get(home, ()) if _meets(a, [span])}

    def fixed(a) -> bool:
        if id(a) in made:
            return True
        home = where.home(a)
        if home is None:
            return _within(a, fed) and not writers(a, None)
        return not _meets(a, [span for _, span in seen.get(home, ())]) and writers(a, home) <= steady

    def hoistable(i: int) -> bool:
        reads, ws, known = io[i]
        if not known or not ws:
            return False
        for w in ws:
            home = where.home(w)
            if home is None or _meets(w, [span for _, span in seen.get(home, ())]) or writers(w, home) != {i}:
                return False  # outside the plan's buffers, seen by the caller, or written by another call too
        return all(fixed(r) for r in reads)

    changed = True
    while changed:
        changed = False
        for i in range(len(steps)):
            if i not in steady and hoistable(i):
                steady.add(i)
                changed = True
    return ([s for k, s in enumerate(steps) if k not in steady], [s for k, s in enumerate(steps) if k in steady])
