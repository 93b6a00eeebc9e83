"""What the flat optimizer updates' tests share: every byte of an optimizer's parameters and saved
state, the two ways of loading a state dict (into a fresh optimizer, or after a step made state),
a deep copy stepped beside its original, and a small MLP trained through a CapturedStep."""

from __future__ import annotations

import copy

import numpy as np

import devgrad as dg
from devgrad import nn
from devgrad.capture import CapturedStep


def state_bytes(params, opt):
    """The parameters' bytes and, per parameter index, each saved state entry's bytes."""
    state = opt.state_dict()["state"]
    return ([p.data.tobytes() for p in params],
            {i: {k: np.asarray(v).tobytes() for k, v in entry.items()} for i, entry in state.items()})


def state_loaders(values: list, saved: dict) -> tuple:
    """``(load, step_then_load)``, each ``(params, opt) -> None``: set the parameters to ``values``
    and load ``saved`` into the optimizer; the second takes a step first (state made, then
    overwritten in place)."""

    def load(params, opt):
        for p, v in zip(params, values):
            p.data[...] = v
        opt.load_state_dict(saved)

    def step_then_load(params, opt):
        for p in params:
            p.grad = dg.tensor(np.ones_like(p.data))
        opt.step()
        load(params, opt)

    return load, step_then_load


def stepped_with_its_copy(params, opt) -> tuple:
    """``state_bytes`` of (params, opt) and of a deep copy of them, after one more step of each with
    the same gradients: a copy must update its own arrays, not the original's."""
    params2, opt2 = copy.deepcopy((params, opt))
    for p, p2 in zip(params, params2):
        p.grad, p2.grad = dg.tensor(np.full(p.shape, 0.5, p.dtype)), dg.tensor(np.full(p.shape, 0.5, p.dtype))
    opt.step()
    opt2.step()
    return state_bytes(params, opt), state_bytes(params2, opt2)


def captured_mlp(make_optimizer, dtype, captured: bool, starts) -> tuple:
    """A 3-4-2 tanh MLP trained on two batches of 20 rows (``starts`` picks them in turn) through a
    ``CapturedStep`` (``captured=False``: eagerly) with ``make_optimizer(parameters)``; returns
    (parameters, optimizer, the CapturedStep)."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((40, 3)).astype(dtype), rng.integers(0, 2, 40)
    model = nn.MLP([3, 4, 2], activation="tanh", generator=np.random.default_rng(0), dtype=dtype)
    opt = make_optimizer(model.parameters())

    def step(xb, yb):
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    for start in starts:
        run(dg.tensor(x[start:start + 20]), dg.tensor(y[start:start + 20]))
    return list(model.parameters()), opt, run


def start(shapes: list, dtypes: list, steps: int, seed: int = 3) -> tuple:
    """Parameter arrays of ``shapes`` and ``dtypes`` (the first in Fortran order, unlike its flat
    views) and ``steps`` lists of gradients for them (one not C-ordered)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    arrays[0] = np.asfortranarray(arrays[0])
    grads = [[rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)] for _ in range(steps)]
    grads[1][0] = grads[1][0].T.copy().T
    return arrays, grads


def stepped(make_optimizer, arrays: list, grads: list, steps, before=None, skipped=(2, 1)) -> tuple:
    """(parameters, optimizer) after the steps ``steps`` of ``grads`` from ``arrays`` (copied), with
    ``make_optimizer(parameters)``, ``before(parameters, optimizer)`` first if given; on step
    ``skipped[0]`` parameter ``skipped[1]`` has no gradient."""
    params = [dg.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = make_optimizer(params)
    if before is not None:
        before(params, opt)
    for step in steps:
        for i, (p, g) in enumerate(zip(params, grads[step])):
            p.grad = None if (step, i) == skipped else dg.tensor(g.copy())
        opt.step()
    return params, opt
