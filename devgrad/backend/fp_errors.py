"""NumPy's floating-point error state for devgrad's arithmetic: inf and NaN are values, not events.

It lives in the backend (it is NumPy's, and the device modules' kernels use it) and serves the
layers above: the core's ``Function.apply`` and backward walk, the kernels of nn.

Division by 0, log or sqrt of a negative number, overflow and inf - inf give inf or NaN,
which PyTorch returns silently; NumPy would warn. ``Function.apply`` runs every op's forward,
and the backward walk runs a whole backward, with NumPy's errors ignored, and restores the
caller's state afterwards (a user's own ``np.errstate`` is untouched outside devgrad's calls).

NumPy (>= 2) keeps its error state in a context variable: setting it directly, as ``ERRORS.set
(QUIET)`` ... ``ERRORS.reset(token)``, costs a fraction of a microsecond, where entering
``np.errstate`` costs microseconds; and an op called where the state is set already (inside the
backward walk or a replayed step) only reads it (``ERRORS.get() is QUIET``). Under another NumPy
layout, ``ERRORS`` enters and leaves ``np.errstate`` behind the same calls: slower, the same effect.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


class _Errstate:
    """``np.errstate(all="ignore")`` behind a context variable's ``set`` / ``reset``."""

    def get(self) -> Any:
        return self  # never QUIET: without the context variable, each op enters the state itself

    def set(self, state) -> Any:
        errors = np.errstate(all="ignore")
        errors.__enter__()
        return errors

    def reset(self, errors) -> None:
        errors.__exit__(None, None, None)


try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj  # type: ignore[attr-defined]
    ERRORS: Any = _extobj_contextvar
    QUIET: Any = _make_extobj(all="ignore")
except ImportError:  # another NumPy layout: the public context manager
    ERRORS = _Errstate()
    QUIET = None


def quiet(fn):
    """Decorate a function computing on arrays that may run outside an op's forward and the
    backward walk (a kernel called directly, a Tensor's conversion that bypasses the graph) so
    that it warns as little as an op: NumPy's floating-point errors are ignored while it runs.
    Inside an op or the walk, where they are ignored already, it only reads the state."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if ERRORS.get() is QUIET:
            return fn(*args, **kwargs)
        token = ERRORS.set(QUIET)
        try:
            return fn(*args, **kwargs)
        finally:
            ERRORS.reset(token)
    return wrapper
