"""Passes that make a recorded CPU plan cheaper to replay, bit for bit (``devgrad.cpu_plan`` runs them).

A replay of a small model's step is dozens of NumPy calls on arrays of a few hundred numbers,
each costing about a microsecond of argument handling, so what the passes save is calls and the
work NumPy does for each argument, never arithmetic:

- ``constants``: a Python number in a ufunc call (``x + 1``, ``1.0 - a``, ``x <= 0``) or a fill
  (``copyto(buf, 1.0)``) becomes a 0-d array of the other operands' float dtype, made once. NumPy
  converts a Python number on every call (half the cost of a small call); it converts it to that
  same dtype, so where the number is exact in it the loop and the values are the same.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["constants"]


def constants(steps: list) -> list:
    """``steps`` with the Python numbers of ufunc calls and fills as 0-d arrays."""
    return [_constant_step(fn, args) for fn, args in steps]


def _constant_step(fn, args: tuple) -> tuple:
    if fn is np.copyto and len(args) == 2 and isinstance(args[0], np.ndarray):
        value = _exact(args[1], args[0].dtype)
        return (fn, (args[0], value)) if value is not None else (fn, args)
    if type(fn) is np.ufunc and fn.nout == 1 and len(args) == fn.nin + 1:
        inputs, out = args[:-1], args[-1]
    elif (type(fn) is functools.partial and type(fn.func) is np.ufunc and fn.func.nout == 1 and not fn.args
          and fn.keywords.keys() == {"out"} and len(fn.keywords["out"]) == 1 and len(args) == fn.func.nin):
        inputs, out = args, fn.keywords["out"][0]  # maximum & co.: out= as a keyword
    else:
        return fn, args
    dtypes = {a.dtype for a in inputs if isinstance(a, np.ndarray)}
    if not isinstance(out, np.ndarray) or len(dtypes) != 1:
        return fn, args
    dtype = dtypes.pop()  # the loop NumPy picks for it and a weak Python number (out= may differ: x <= 0)
    converted = [_exact(a, dtype) if _is_number(a) else a for a in inputs]
    if any(c is None for c in converted) or all(isinstance(a, np.ndarray) for a in inputs):
        return fn, args  # a number not exact in the dtype (NumPy's rounding decides), or none at all
    return fn, (*converted, *args[len(inputs):])


def _is_number(value) -> bool:
    return type(value) in (int, float)


def _exact(value, dtype: np.dtype):
    """``value`` as a 0-d array of ``dtype`` when it is a Python number that this float dtype holds
    exactly (NumPy's own conversion gives the same then); else None."""
    if not _is_number(value) or dtype.kind != "f":
        return None
    array = np.array(value, dtype=dtype)
    if not np.isfinite(array) or float(array) != value:
        return None
    return array
