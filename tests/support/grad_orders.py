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


def check_paths_agree(fn, xs) -> None:
    """The first-order gradient (raw arrays where an op allows) equals the graph-building one."""
    out = fn(*xs)
    outs = list(out) if isinstance(out, tuple | list) else [out]
    live = [o for o in outs if o.requires_grad]
    rng = np.random.default_rng(3)
    cots = [dg.tensor(rng.standard_normal(o.shape), device=o.device, dtype=o.dtype) for o in live]
    wanted = [x for x in xs if isinstance(x, dg.Tensor) and x.requires_grad]
    fast = dg.grad(live, wanted, cots, retain_graph=True, allow_unused=True)
    graph = dg.grad(live, wanted, cots, create_graph=True, allow_unused=True)
    for f, g in zip(fast, graph):
        assert (f is None) == (g is None)
        if f is not None:
            np.testing.assert_allclose(f.numpy(), g.numpy(), rtol=1e-12, atol=1e-14)


def check_orders(fn, arrays, device, **tolerances) -> None:
    """``dg.gradcheck`` and ``dg.gradgradcheck`` of ``fn`` at ``arrays`` (host arrays, made float64),
    and the first-order and graph-building gradients agree."""
    xs = as_tensors(arrays, device)
    assert dg.gradcheck(fn, xs, **tolerances)
    assert dg.gradgradcheck(fn, xs, **tolerances)
    check_paths_agree(fn, xs)
