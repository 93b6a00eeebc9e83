"""Adam over a group's flat arrays on the CPU gives, bit for bit, what the per-parameter update gives.

The reference is the same optimizer with no flat layout (``FLAT_MAX`` 0: every parameter
updated on its own); both run from the same start with the same gradients, and every byte of
the parameters and of the saved state must agree: eager and captured for replay, with steps
where a parameter has no gradient (its step count falls behind the others'), after
``load_state_dict``, in float32 and float64, with a Python and a capturable learning rate.
"""

from __future__ import annotations


import numpy as np
import pytest

import devgrad as dg
from devgrad import optim
from devgrad.optim import _adam_flat
from tests.support.optim_flat import (captured_mlp, start, state_bytes, state_loaders, stepped,
                                      stepped_with_its_copy)

SHAPES = [(4, 3), (3,), (1,), (2, 2, 2)]
STEPS = 5
SKIPPED = (2, 1)  # on step 2, parameter 1 has no gradient

VARIANTS = [
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "betas": (0.8, 0.99), "maximize": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-6}),
    ("Adam", {"lr": 0.02, "weight_decay": 0.05, "maximize": True, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "maximize": True}),
]


def _run(name, options, dtypes, capturable, flat_max, steps=range(STEPS), before=None, spread=True):
    """The parameters and optimizer after ``steps`` (``before(params, opt)`` first, if given);
    ``spread``: per-parameter corrections copied onto the elements, else applied one by one."""
    arrays, grads = start(SHAPES, dtypes, STEPS)
    saved = _adam_flat.FLAT_MAX, _adam_flat.SPREAD_MAX
    _adam_flat.FLAT_MAX, _adam_flat.SPREAD_MAX = flat_max, saved[1] if spread else 0
    try:
        return stepped(lambda params: getattr(optim, name)(params, capturable=capturable, **options), arrays, grads,
                       steps, before, SKIPPED)
    finally:
        _adam_flat.FLAT_MAX, _adam_flat.SPREAD_MAX = saved


def _flat_members(params, opt) -> int:
    """How many parameters keep their first moment in one shared flat array."""
    bases = [opt.state[p]["exp_avg"].base for p in params]
    return max(sum(b is base for b in bases) for base in bases if base is not None) if any(
        b is not None for b in bases) else 0


@pytest.mark.parametrize("spread", [True, False], ids=["spread", "one-by-one"])
@pytest.mark.parametrize("capturable", [False, True], ids=["number-lr", "device-lr"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,options", VARIANTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(VARIANTS)])
def test_flat_update_matches_the_per_parameter_update_bit_for_bit(name, options, dtype, capturable, spread):
    dtypes = [dtype] * len(SHAPES)
    flat = _run(name, options, dtypes, capturable, _adam_flat.FLAT_MAX, spread=spread)
    ref = _run(name, options, dtypes, capturable, 0)
    assert _flat_members(*flat) == len(SHAPES) and _flat_members(*ref) == 0
    assert state_bytes(*flat) == state_bytes(*ref)
    steps = [opt_state["step"] for opt_state in flat[1].state_dict()["state"].values()]
    assert steps == [STEPS, STEPS - 1, STEPS, STEPS]  # the skipped parameter's count fell behind


@pytest.mark.parametrize("capturable", [False, True], ids=["number-lr", "device-lr"])
def test_large_parameters_and_other_dtypes_keep_their_own_update(capturable, monkeypatch):
    """Above FLAT_MAX a parameter is updated on its own; each dtype's small ones get a flat block."""
    dtypes = ["float32", "float64", "float32", "float64"]
    options = {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}
    flat = _run("Adam", options, dtypes, capturable, 3)  # (3,) and (1,) flat: one of each dtype, no block
    assert _flat_members(*flat) == 0
    flat = _run("Adam", options, ["float32", "float32", "float32", "float64"], capturable, 3)
    assert _flat_members(*flat) == 2  # (3,) and (1,) in float32; (4, 3) too large, (2, 2, 2) alone
    ref = _run("Adam", options, ["float32", "float32", "float32", "float64"], capturable, 0)
    assert state_bytes(*flat) == state_bytes(*ref)


@pytest.mark.parametrize("capturable", [False, True], ids=["number-lr", "device-lr"])
def test_load_state_dict_keeps_or_makes_the_layout_and_the_same_bits(capturable):
    """Loaded into existing state (written in place: the layout stays) or into a fresh optimizer
    (its arrays adopted into a layout), the next steps are the per-parameter ones."""
    name, options, dtypes = "AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}, ["float32"] * 4
    source, source_opt = _run(name, options, dtypes, capturable, 0, steps=range(3))
    saved = source_opt.state_dict()
    values = [p.data.copy() for p in source]

    load, step_then_load = state_loaders(values, saved)
    later = range(3, STEPS)
    into_existing = _run(name, options, dtypes, capturable, _adam_flat.FLAT_MAX, later, step_then_load)
    into_fresh = _run(name, options, dtypes, capturable, _adam_flat.FLAT_MAX, later, load)
    ref = _run(name, options, dtypes, capturable, 0, later, load)
    assert _flat_members(*into_existing) == _flat_members(*into_fresh) == len(SHAPES)
    for _, opt in (into_existing, into_fresh):  # every step after the load took the flat path (no scratch made)
        assert not any("_scratch" in state for state in opt.state.values())
    assert state_bytes(*into_existing) == state_bytes(*ref) == state_bytes(*into_fresh)
    assert saved.keys() == into_fresh[1].state_dict().keys()


def test_a_copy_of_the_optimizer_updates_its_own_arrays():
    params, opt = _run("Adam", {"lr": 0.01}, ["float32"] * 4, False, _adam_flat.FLAT_MAX, range(2))
    original, copied = stepped_with_its_copy(params, opt)
    assert original == copied


CAPTURED = {
    "adam_l2": lambda p: optim.Adam(p, lr=0.01, weight_decay=1e-3, capturable=True),
    "adam_amsgrad_maximize": lambda p: optim.Adam(p, lr=0.01, amsgrad=True, maximize=True, capturable=True),
    "adamw": lambda p: optim.AdamW(p, lr=0.01, capturable=True),
}


def _captured(optimizer, dtype, flat_max, captured=True, spread=True):
    saved = _adam_flat.FLAT_MAX, _adam_flat.SPREAD_MAX
    _adam_flat.FLAT_MAX, _adam_flat.SPREAD_MAX = flat_max, saved[1] if spread else 0
    try:
        return captured_mlp(CAPTURED[optimizer], dtype, captured, (0, 20, 0, 20, 0, 20))
    finally:
        _adam_flat.FLAT_MAX, _adam_flat.SPREAD_MAX = saved


@pytest.mark.parametrize("dtype,spread", [("float32", True), ("float64", True), ("float32", False)])
@pytest.mark.parametrize("optimizer", list(CAPTURED))
def test_a_captured_flat_update_replays_the_per_parameter_bits(optimizer, dtype, spread):
    flat = _captured(optimizer, dtype, _adam_flat.FLAT_MAX, spread=spread)
    ref = _captured(optimizer, dtype, 0)
    eager = _captured(optimizer, dtype, 0, captured=False)
    assert flat[2].replays == ref[2].replays == 4 and flat[2].failure is None
    assert state_bytes(*flat[:2]) == state_bytes(*ref[:2]) == state_bytes(*eager[:2])
    plans = [next(iter(run._graphs.values()))[1] for run in (flat[2], ref[2])]
    assert len(plans[0].steps) < len(plans[1].steps) - 20  # 4 parameters, ~20 calls each, now a few


def test_parameters_that_share_memory_keep_the_per_parameter_order():
    """A parameter tied to another's memory (a transposed view) sees the other's decayed update first."""
    def run(flat_max):
        base = np.random.default_rng(1).standard_normal((3, 2)).astype(np.float32)
        w = dg.tensor(base.copy(), requires_grad=True)
        tied = dg.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
        tied.data = w.data.T
        params = [w, dg.tensor(np.ones(3, np.float32), requires_grad=True), tied]
        saved = _adam_flat.FLAT_MAX
        _adam_flat.FLAT_MAX = flat_max
        try:
            opt = optim.AdamW(params, lr=0.1, weight_decay=0.5)
            for step in range(3):
                for p in params:
                    p.grad = dg.tensor(np.full(p.shape, 0.1 * step + 0.3, np.float32))
                opt.step()
        finally:
            _adam_flat.FLAT_MAX = saved
        return state_bytes(params, opt)

    assert run(_adam_flat.FLAT_MAX) == run(0)
