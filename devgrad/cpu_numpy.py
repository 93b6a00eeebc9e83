"""NumPy's conversions and creations as a step recorded for replay sees them (``cpu_plan.record``
puts them in place of NumPy's own while the step runs)."""

from __future__ import annotations

import numpy as np

from devgrad.cpu_capture import Tracer, _buffer, _local, _plain, _traced

__all__ = ["converters"]

_NUMPY_CONVERTERS = ("asarray", "asanyarray", "array", "ascontiguousarray")


def converters():
    """np.asarray & co. that keep a traced array traced (a conversion that copies is recorded),
    and np.zeros & co. that make traced buffers (refilled on every replay, so that the writes
    a step makes into them are recorded, and repeated on clean buffers)."""
    originals = {name: getattr(np, name) for name in _NUMPY_CONVERTERS + _NUMPY_CREATIONS}

    def convert(name):
        original = originals[name]

        def traced(a, dtype=None, *args, **kwargs):
            if isinstance(a, Tracer):
                copy = kwargs.get("copy", name == "array")
                same = dtype is None or np.dtype(dtype) == a.dtype
                contiguous = name != "ascontiguousarray" or a.flags.c_contiguous
                if same and contiguous and not copy:
                    return a
                return a.astype(a.dtype if dtype is None else dtype, order="C" if not contiguous else "K")
            if isinstance(a, list | tuple) and any(isinstance(v, Tracer) for v in a):
                return np.stack(a) if dtype is None else np.stack(a).astype(dtype)
            return original(a, dtype, *args, **kwargs)

        return traced

    def create(name):
        original = originals[name]
        fill = _FILLS.get(name)

        def traced(*args, **kwargs):
            rec = getattr(_local, "recording", None)
            if rec is None:  # another thread, not the one recording: NumPy's own
                return original(*args, **kwargs)
            buf = _buffer(rec, original(*_plain(args), **_plain(kwargs)))
            if fill is not None:
                rec.plan.append((np.copyto, (buf, _fill_value(_plain(fill(args, kwargs)), buf.dtype)), None))
            return _traced(buf)

        return traced

    traced = {name: convert(name) for name in _NUMPY_CONVERTERS}
    traced.update({name: create(name) for name in _NUMPY_CREATIONS})
    return originals, traced


def _fill_value(value, dtype: np.dtype):
    """A creation's fill as ``copyto`` takes it into a buffer of ``dtype``: NumPy's fill casts it
    unsafely (np.ones(n, bool)), where copyto refuses 1 into bools and 2.0 into integers."""
    if isinstance(value, bool | int | float):
        if dtype == np.bool_:
            return bool(value)
        if dtype.kind in "iu" and isinstance(value, float) and value.is_integer():
            return int(value)
    return value


_NUMPY_CREATIONS = ("zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like")
# how each creation fills its array (the value given its arguments); empty ones are not filled
_FILLS = {"zeros": lambda a, k: 0, "zeros_like": lambda a, k: 0, "ones": lambda a, k: 1, "ones_like": lambda a, k: 1,
          "full": lambda a, k: a[1] if len(a) > 1 else k["fill_value"],
          "full_like": lambda a, k: a[1] if len(a) > 1 else k["fill_value"]}
