"""Gradients of order 1 and 2 against float64 finite differences, for the NumPy function tests."""

from __future__ import annotations

import numpy as np

import devgrad as dg


def as_tensors(arrays, device) -> list:
    """float64 leaves that require grad (non-floating arrays stay constants)."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        floating = a.dtype.kind == "f"
        out.append(dg.tensor(a, device=device, requires_grad=floating, dtype=np.float64 if floating else None))
    return out


def check_orders(fn, arrays, device, **tolerances) -> None:
    """``dg.gradcheck`` and ``dg.gradgradcheck`` of ``fn`` at ``arrays`` (host arrays, made float64)."""
    xs = as_tensors(arrays, device)
    assert dg.gradcheck(fn, xs, **tolerances)
    assert dg.gradgradcheck(fn, xs, **tolerances)
