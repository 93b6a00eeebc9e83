"""NumPy's floating-point error state for devgrad's arithmetic: inf and NaN are values, not events."""

from __future__ import annotations

import functools

import numpy as np


# NumPy keeps its floating-point error state in a context variable (NumPy >= 2): setting it
# directly is several times cheaper than entering ``np.errstate``, which matters per op call.
try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj  # type: ignore[attr-defined]
    _QUIET_STATE = _make_extobj(all="ignore")
except ImportError:  # another NumPy layout: the public context manager, slower but the same effect
    _extobj_contextvar = _QUIET_STATE = None


def quiet(forward):
    """Decorate an op's ``forward`` so NumPy's floating-point warnings stay off inside it.

    Division by 0, log or sqrt of a negative number and exp's overflow give inf or NaN, which
    are values, not events (PyTorch is silent too). It costs about a microsecond a call, so
    the cheapest arithmetic (+, -, *, sum, mean, matmul, linear) goes without: there an
    infinite or overflowing input can still raise NumPy's warning in the forward. Every
    backward runs under one error state for the whole walk and is silent.
    """
    if _extobj_contextvar is None:
        @functools.wraps(forward)
        def slow(self, *arrays, **params):
            with np.errstate(all="ignore"):
                return forward(self, *arrays, **params)
        return slow

    @functools.wraps(forward)
    def wrapper(self, *arrays, **params):
        token = _extobj_contextvar.set(_QUIET_STATE)
        try:
            return forward(self, *arrays, **params)
        finally:
            _extobj_contextvar.reset(token)
    return wrapper

