"""A training step recorded on the CPU as a flat plan of NumPy calls into preallocated buffers.

The CPU's counterpart of a CUDA graph (``CapturedStep`` uses it). While a step runs once for
real, every array it works on is a ``Tracer``: an ndarray subclass that computes as usual and
also appends each NumPy call it takes part in to a plan, with the call's result kept as that
call's buffer (``out=``). Replaying the plan repeats exactly those calls, writing into the same
buffers: the same arithmetic in the same order (bit-identical results), without Tensors, graph
nodes, the backward walk or per-op checks.

What makes a replay correct, and what is refused instead (``CaptureError``):
- Views (reshape, transpose, basic slices) are not calls: they keep looking at the same buffers.
- Arrays that outlive the step (parameters, optimizer state, metric sums) are written in place;
  the first write to each saves its old contents, so a failed recording can be undone.
- A value read into Python (``if mask.any():``, ``int(labels.max())``) is recorded as a guard:
  a replay where that array holds other bytes stops before anything outside its buffers was
  written and the step runs eagerly (a read after such a write is refused).
- A NumPy method the tracer does not know that makes a new array is refused (caught in
  ``__array_finalize__``); ``np.asarray``/``np.array`` of a traced array are traced while
  recording. ``CapturedStep`` checks the first replay against an eager step bit for bit.
"""

from __future__ import annotations

import operator
import sys
import threading
from typing import Literal

import numpy as np

from devgrad.backend import CaptureError


class DivergedError(Exception):
    """A replay met a data-dependent branch that went the other way than when it was recorded."""


class _Recording:
    """What one recording has gathered so far."""

    def __init__(self):
        self.plan: list = []  # (function, args, kwargs or None)
        self.slots = 0  # buffers placed so far (where the next one starts within a page, see _owner)
        self.internal: set = set()  # ids of the buffers the recording allocated
        self.buffers: list = []  # ... kept alive
        self.saved: list = []  # (array outside the plan's buffers, its contents before the first write)
        self.saved_keys: set = set()
        self.written_outside = False
        self.problems: list[str] = []
        self.quiet = 0  # > 0 while the recorder itself calls NumPy (its arrays are no escapes)
        self.rng: tuple = ()  # (devgrad's default generator, its state when the recording began)


_local = threading.local()


def _rec() -> _Recording | None:
    return getattr(_local, "recording", None)


def traced_if_recording(a):
    """``a`` as a Tracer while this thread records a step, so that what is done with it in place is
    recorded too where the recording does not trace it (a metric sum or an average of the weights
    kept in a closure); else ``a`` itself."""
    if type(a) is np.ndarray and getattr(_local, "recording", None) is not None:
        return a.view(Tracer)
    return a


def _plain(x):
    """``x`` with every Tracer (also inside tuples and lists) as a plain ndarray view."""
    if isinstance(x, Tracer):
        return x.view(np.ndarray)
    if isinstance(x, tuple | list) and any(isinstance(v, Tracer | tuple | list) for v in x):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _root(a: np.ndarray):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _buffer(rec: _Recording, value) -> np.ndarray:
    """A fresh result as one of the plan's buffers (a NumPy scalar becomes a 0-d array), as a plain
    view; ``_traced`` gives the step the Tracer that owns it. Owning its memory like the eager
    step's fresh array (``base`` None), it takes the same paths (nothing copies it "because it
    is a view"); a C- or F-ordered result keeps its layout (others stay the result itself)."""
    buf = value if isinstance(value, np.ndarray) else np.array(value)
    if type(buf) is not np.ndarray:
        buf = buf.view(np.ndarray)
    order: Literal["C", "F"] | None = "C" if buf.flags.c_contiguous else "F" if buf.flags.f_contiguous else None
    if order is not None:
        owner = _owner(rec, buf.shape, buf.dtype, order)
        plain = owner.view(np.ndarray)
        np.copyto(plain, buf)
        buf = plain
    rec.internal.add(id(_root(buf)))
    rec.buffers.append(buf)
    return buf


class _Backing(np.ndarray):
    """The memory of one of the plan's buffers (a Tracer reports a buffer on it as owning its memory)."""


_PAGE = 4096
_LINE = 64
_STAGGER = 7 * _LINE  # coprime to the page's 64 lines: 64 buffers in a row start on 64 different lines


def _owner(rec: _Recording, shape, dtype, order, cls=None) -> np.ndarray:
    """A new buffer starting on a cache line, each at another offset within a page than the last ones.

    Buffers that malloc hands out for arrays of one size tend to start at one offset within a
    page; a call whose output starts 4 to 28 bytes past its input's offset there (4K aliasing) runs
    up to 30 times slower on x86 (a 32 KiB copy: 30 µs instead of 1), and one at the very same offset
    up to twice. Aligned to a line and staggered, no two neighbours in the plan meet like that."""
    nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
    raw = np.ndarray.__new__(_Backing, (nbytes + _PAGE,), np.uint8)
    start = (rec.slots * _STAGGER - raw.ctypes.data) % _PAGE
    rec.slots += 1
    return np.ndarray.__new__(cls or Tracer, shape, dtype, buffer=raw, offset=start, order=order)


def _traced(buf: np.ndarray) -> Tracer:
    """``buf`` as a Tracer: the owning Tracer of a buffer ``_buffer`` made, else a view."""
    owner = buf.base
    if (type(owner) is Tracer and owner.shape == buf.shape and owner.strides == buf.strides
            and owner.ctypes.data == buf.ctypes.data):
        return owner
    return buf.view(Tracer)


def _before_write(rec: _Recording, target) -> None:
    """Note a write into ``target``; the first write to an array outside the plan's buffers saves it."""
    if not isinstance(target, np.ndarray):
        return
    if id(_root(target)) in rec.internal:
        return
    rec.written_outside = True
    key = (id(_root(target)), target.__array_interface__["data"][0], target.shape, target.strides)
    if key not in rec.saved_keys:
        rec.saved_keys.add(key)
        rec.saved.append((target, target.copy()))


def _is_view_of(result, inputs) -> bool:
    return any(isinstance(a, np.ndarray) and np.may_share_memory(result, a) for a in inputs)


def _flat_arrays(args) -> list:
    out = []
    for a in args:
        if isinstance(a, tuple | list):
            out += _flat_arrays(a)
        elif isinstance(a, np.ndarray):
            out.append(a)
    return out


def _assign(buf, fn, args, kwargs):
    """Replay step for a call without ``out=``: its result copied into the recorded buffer."""
    np.copyto(buf, fn(*args, **kwargs))


def _same_bytes(buf, recorded: bytes):
    """Replay step for a value the recording read into Python: still the same, or stop."""
    if buf.tobytes() != recorded:
        raise DivergedError


class Tracer(np.ndarray):
    """An ndarray that records, into the current recording, the NumPy calls it takes part in."""

    @property
    def base(self):
        """NumPy's ``base``, except that a buffer of the plan (placed in memory by ``_owner``) owns its
        memory, like the fresh array the eager step has there: code that copies views copies it neither."""
        base = _NDARRAY_BASE(self)
        return None if type(base) is _Backing else base

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        rec = _rec()
        fn = ufunc if method == "__call__" else getattr(ufunc, method)
        args = _plain(inputs)
        out = kwargs.pop("out", None)
        if rec is None:  # outside a recording: a plain array
            if out is not None:
                kwargs["out"] = _plain(out)
            return fn(*args, **kwargs)
        if method == "at":
            _before_write(rec, args[0])
            fn(*args, **kwargs)
            rec.plan.append((fn, args, kwargs or None))
            return None
        if out is not None:
            plain_out = _plain(out)
            for target in plain_out:
                _before_write(rec, target)
            fn(*args, out=plain_out, **kwargs)
            rec.plan.append(_step(ufunc, method, fn, args, kwargs, plain_out))
            return out[0] if len(out) == 1 else out
        result = fn(*args, **kwargs)
        if isinstance(result, tuple):
            bufs = tuple(_buffer(rec, r) for r in result)
            rec.plan.append((fn, args, {**kwargs, "out": bufs}))
            return tuple(_traced(b) for b in bufs)
        buf = _buffer(rec, result)
        rec.plan.append(_step(ufunc, method, fn, args, kwargs, (buf,)))
        return _traced(buf)

    def __array_function__(self, func, types, args, kwargs):
        rec = _rec()
        pargs, pkwargs = _plain(args), _plain(kwargs)
        if rec is None:
            return func(*pargs, **pkwargs)
        if func is np.copyto:
            _before_write(rec, pargs[0])
            func(*pargs, **pkwargs)
            rec.plan.append((func, pargs, pkwargs or None))
            return None
        if "out" in pkwargs and pkwargs["out"] is not None:
            _before_write(rec, pkwargs["out"])
            func(*pargs, **pkwargs)
            rec.plan.append((func, pargs, pkwargs))
            return kwargs["out"]
        result = func(*pargs, **pkwargs)
        if isinstance(result, np.ndarray) and _is_view_of(result, _flat_arrays(pargs) + _flat_arrays(pkwargs.values())):
            return _traced(result)  # a view of arrays the plan already has: nothing to repeat
        if isinstance(result, np.ndarray | np.generic):
            if func in _CREATIONS:
                return _traced(_buffer(rec, result))  # contents set by later (recorded) calls
            buf = _buffer(rec, result)
            if (func is np.where and len(pargs) == 3 and not pkwargs and isinstance(pargs[0], np.ndarray)
                    and pargs[0].dtype == np.bool_):  # a selection into the buffer: no temporary
                cond, x, y = pargs
                rec.plan.append((np.copyto, (buf, y), {"casting": "unsafe"}))
                rec.plan.append((np.copyto, (buf, x), {"casting": "unsafe", "where": cond}))
            else:
                rec.plan.append((_assign, (buf, func, pargs, pkwargs), None))
            return _traced(buf)
        if func in _METADATA:
            return result
        if func in _COUNTS and isinstance(result, int):  # a count as a 0-d array: `total += count` records
            buf = _buffer(rec, np.array(result, dtype=np.intp))
            rec.plan.append((_assign, (buf, func, pargs, pkwargs), None))
            return _traced(buf)
        rec.problems.append(f"np.{func.__name__} gave a Python value computed from the data")
        return result

    def __array_finalize__(self, obj):
        rec = _rec()
        if rec is not None and not rec.quiet and obj is not None and not np.may_share_memory(self, obj):
            caller = sys._getframe(1)  # the Python line that called the method: where to look
            where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
            rec.problems.append(f"a NumPy method the recorder does not know made a new array (at {where})")

    # -- what hands a value to Python: guarded (a replay where it differs runs eagerly instead) --
    def _read(self, convert):
        """``convert`` of this array's value; while recording, the plan checks on every replay that
        the array still holds exactly these bytes (or the replay is dropped for an eager step)."""
        plain = self.view(np.ndarray)
        rec = _rec()
        if rec is not None:
            if rec.written_outside:
                raise CaptureError("the step read a value into Python (a branch, float(), .item()) after it had "
                                   "changed its parameters or state: a replay could not be dropped cleanly there")
            rec.plan.append((_same_bytes, (plain, plain.tobytes()), None))
        return convert(plain)

    def __bool__(self):
        return self._read(bool)

    def __float__(self):
        return self._read(float)

    def __int__(self):
        return self._read(int)

    def __index__(self):
        return self._read(operator.index)

    def item(self, *args):
        return self._read(lambda a: a.item(*args))

    def tolist(self):
        return self._read(np.ndarray.tolist)

    def _record_method(self, name, *args, **kwargs):
        rec = _rec()
        plain = self.view(np.ndarray)
        fn = getattr(np.ndarray, name)
        pargs, pkwargs = _plain(args), _plain(kwargs)
        result = fn(plain, *pargs, **pkwargs)
        if rec is None or not isinstance(result, np.ndarray | np.generic):
            return result
        if isinstance(result, np.ndarray) and np.may_share_memory(result, plain):
            return _traced(result)
        buf = _buffer(rec, result)
        if name in ("copy", "astype"):  # the same values (same shape) into the buffer, no temporary
            rec.plan.append((np.copyto, (buf, plain), {"casting": "unsafe"}))
        else:
            rec.plan.append((_assign, (buf, fn, (plain, *pargs), pkwargs), None))
        return _traced(buf)

    def copy(self, order="C"):
        return self._record_method("copy", order)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        return self._record_method("astype", dtype, order, casting)

    def __getitem__(self, key):
        rec = _rec()
        if rec is None:
            return _traced(self.view(np.ndarray)[_plain(key)]) if _has_tracer(key) else super().__getitem__(key)
        for part in key if type(key) is tuple else (key,):
            if isinstance(part, Tracer) and part.dtype == np.bool_:  # the result's length is the mask's count:
                int(np.count_nonzero(part))  # read, and so checked on every replay (another count: eager)
        rec.quiet += 1
        try:
            return self._record_method("__getitem__", key)
        finally:
            rec.quiet -= 1

    def __setitem__(self, key, value):
        rec = _rec()
        plain, pkey, pvalue = self.view(np.ndarray), _plain(key), _plain(value)
        if rec is not None:
            _before_write(rec, plain)
            rec.plan.append((operator.setitem, (plain, pkey, pvalue), None))
        plain[pkey] = pvalue

    def fill(self, value):
        self.__setitem__(Ellipsis, value)

    def flatten(self, order="C"):
        return self._record_method("flatten", order)

    def ravel(self, order="C"):
        return self._record_method("ravel", order)

    def reshape(self, *shape, **kwargs):
        return self._record_method("reshape", *shape, **kwargs)

    def argmax(self, *args, **kwargs):
        return self._record_method("argmax", *args, **kwargs)

    def argmin(self, *args, **kwargs):
        return self._record_method("argmin", *args, **kwargs)

    def dot(self, other, out=None):
        return np.dot(self, other) if out is None else np.dot(self, other, out=out)

    def take(self, *args, **kwargs):
        return self._record_method("take", *args, **kwargs)

    def repeat(self, *args, **kwargs):
        return self._record_method("repeat", *args, **kwargs)

    def _unsupported(self, *args, **kwargs):
        raise CaptureError("an in-place NumPy method (sort, partition, put, resize) ran while the step was being "
                           "recorded: the recorder cannot repeat it")

    sort = partition = put = resize = _unsupported


_NDARRAY_BASE = np.ndarray.base.__get__
_REDUCE_KEYWORDS = frozenset({"axis", "dtype", "keepdims", "where", "out"})


def _step(ufunc, method: str, fn, args: tuple, kwargs: dict, outs: tuple) -> tuple:
    """The plan's entry for a ufunc call writing ``outs``: with its arguments positional where NumPy
    takes them so (a keyword call costs a dict per replay: on a tiny step, a tenth of the call)."""
    if len(outs) == 1 and not kwargs and method == "__call__" and ufunc.nout == 1 and len(args) == ufunc.nin \
            and ufunc not in _KEYWORD_OUT:
        return fn, (*args, outs[0]), None
    if (method == "reduce" and len(outs) == 1 and len(args) == 1 and kwargs.keys() <= _REDUCE_KEYWORDS
            and kwargs.get("where", True) is True):
        # reduce(array, axis, dtype, out, keepdims): axis 0 is reduce's own default
        return fn, (args[0], kwargs.get("axis", 0), kwargs.get("dtype"), outs[0], kwargs.get("keepdims", False)), None
    return fn, args, {**kwargs, "out": outs}


def _has_tracer(key) -> bool:
    return isinstance(key, Tracer) or (isinstance(key, tuple) and any(isinstance(k, Tracer) for k in key))


# ufuncs whose out= must be a keyword (a third positional argument is deprecated)
_KEYWORD_OUT = frozenset({np.maximum, np.minimum, np.fmax, np.fmin})
_COUNTS = frozenset({np.count_nonzero})
_CREATIONS = frozenset({np.empty_like})
_METADATA = frozenset({np.shape, np.ndim, np.size, np.result_type, np.may_share_memory, np.shares_memory,
                       np.iscomplexobj, np.isrealobj, np.can_cast, np.min_scalar_type})
