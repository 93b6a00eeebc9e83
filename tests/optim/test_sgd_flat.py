"""SGD over a group's flat arrays on the CPU gives, bit for bit, what the per-parameter update gives.

The reference is the same optimizer with no flat layout (``FLAT_MAX`` 0: every parameter updated
on its own); both run from the same start with the same gradients, and every byte of the
parameters and of the saved state must agree: with a step where a parameter has no gradient,
after ``load_state_dict``, in float32 and float64, with a Python and a capturable learning rate,
and captured for replay.
"""

from __future__ import annotations


import numpy as np
import pytest

import devgrad as dg
from devgrad import optim
from devgrad.optim import _sgd_flat
from tests.support.optim_flat import (captured_mlp, start, state_bytes, state_loaders, stepped,
                                      stepped_with_its_copy)

SHAPES = [(4, 3), (3,), (1,), (2, 2, 2)]
STEPS = 4
SKIPPED = (2, 1)  # on step 2, parameter 1 has no gradient

VARIANTS = [
    {"lr": 0.1},
    {"lr": 0.1, "weight_decay": 0.1, "maximize": True},
    {"lr": 0.1, "maximize": True},
    {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.1, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01, "maximize": True},
    {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True},
]


def _run(options, dtype, capturable, flat_max, steps=range(STEPS), before=None):
    """The parameters and optimizer after ``steps`` (``before(params, opt)`` first, if given)."""
    arrays, grads = start(SHAPES, [dtype] * len(SHAPES), STEPS)
    saved, _sgd_flat.FLAT_MAX = _sgd_flat.FLAT_MAX, flat_max
    try:
        return stepped(lambda params: optim.SGD(params, capturable=capturable, **options), arrays, grads, steps,
                       before, SKIPPED)
    finally:
        _sgd_flat.FLAT_MAX = saved


def _flat(opt) -> bool:
    return any(isinstance(layout, _sgd_flat.Layout) for layout in opt._flat_layouts.values())


@pytest.mark.parametrize("capturable", [False, True], ids=["number-lr", "device-lr"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("options", VARIANTS, ids=[str(i) for i in range(len(VARIANTS))])
def test_flat_update_matches_the_per_parameter_update_bit_for_bit(options, dtype, capturable):
    flat = _run(options, dtype, capturable, _sgd_flat.FLAT_MAX)
    ref = _run(options, dtype, capturable, 0)
    assert _flat(flat[1]) and not _flat(ref[1])
    assert state_bytes(*flat) == state_bytes(*ref)


def test_a_group_with_a_large_parameter_keeps_the_per_parameter_update():
    params, opt = _run({"lr": 0.1, "momentum": 0.9}, "float32", False, 11)  # (4, 3) has 12 elements
    assert not _flat(opt) and opt.state[params[1]]["momentum_buffer"].base is None


@pytest.mark.parametrize("options", [VARIANTS[4], VARIANTS[6]], ids=["dampened", "nesterov"])
def test_load_state_dict_keeps_or_makes_the_layout_and_the_same_bits(options):
    """Loaded into existing state (written in place: the layout stays) or into a fresh optimizer
    (its buffers adopted into a layout), the next steps are the per-parameter ones."""
    source, source_opt = _run(options, "float32", False, 0, steps=range(2))
    saved = source_opt.state_dict()
    values = [p.data.copy() for p in source]

    load, step_then_load = state_loaders(values, saved)
    later = range(2, STEPS)
    into_existing = _run(options, "float32", False, _sgd_flat.FLAT_MAX, later, step_then_load)
    into_fresh = _run(options, "float32", False, _sgd_flat.FLAT_MAX, later, load)
    ref = _run(options, "float32", False, 0, later, load)
    for _, opt in (into_existing, into_fresh):
        assert _flat(opt)
        bases = {id(state["momentum_buffer"].base) for state in opt.state.values()}
        assert len(bases) == 1  # every buffer a view of one flat array
    assert state_bytes(*into_existing) == state_bytes(*ref) == state_bytes(*into_fresh)


def test_a_copy_of_the_optimizer_updates_its_own_arrays():
    params, opt = _run(VARIANTS[3], "float32", False, _sgd_flat.FLAT_MAX, range(2))
    original, copied = stepped_with_its_copy(params, opt)
    assert original == copied


def _captured(options, flat_max, captured=True):
    saved, _sgd_flat.FLAT_MAX = _sgd_flat.FLAT_MAX, flat_max
    try:
        return captured_mlp(lambda params: optim.SGD(params, capturable=True, **options), "float32", captured,
                            (0, 20, 0, 20, 0))
    finally:
        _sgd_flat.FLAT_MAX = saved


@pytest.mark.parametrize("options", [VARIANTS[0], VARIANTS[6]], ids=["plain", "nesterov"])
def test_a_captured_step_replays_the_eager_bits_with_the_per_parameter_plan(options):
    """A recording traces views of the arrays, which the layout does not take: the plan is the
    per-parameter one (plain SGD's merged there by ``cpu_fuse.merge_sgd``), and the eager steps
    around it take the flat update."""
    flat = _captured(options, _sgd_flat.FLAT_MAX)
    ref = _captured(options, 0)
    eager = _captured(options, 0, captured=False)
    assert flat[2].replays == ref[2].replays == 3 and flat[2].failure is None
    assert state_bytes(*flat[:2]) == state_bytes(*ref[:2]) == state_bytes(*eager[:2])
    plans = [next(iter(run._graphs.values()))[1] for run in (flat[2], ref[2])]
    assert len(plans[0].steps) == len(plans[1].steps)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_changed_learning_rate_is_the_next_steps_rate(momentum):
    """The flat update keeps its rate as an array of the parameters' dtype between steps: a rate
    set on the group (a schedule's) is the one the next step uses, bit for bit the per-parameter one."""
    def run(flat_max):
        saved, _sgd_flat.FLAT_MAX = _sgd_flat.FLAT_MAX, flat_max
        try:
            params = [dg.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True),
                      dg.tensor(np.ones(3, np.float32), requires_grad=True)]
            opt = optim.SGD(params, lr=0.1, momentum=momentum)
            for lr in (0.1, 0.1, 0.037, 0.037, 1e-3):
                opt.param_groups[0]["lr"] = lr
                for p in params:
                    p.grad = dg.tensor(p.data * 0.5 + 0.25)
                opt.step()
            return opt, [p.data.tobytes() for p in params]
        finally:
            _sgd_flat.FLAT_MAX = saved

    (flat_opt, flat), (ref_opt, ref) = run(_sgd_flat.FLAT_MAX), run(0)
    assert _flat(flat_opt) and not _flat(ref_opt)
    assert flat == ref
