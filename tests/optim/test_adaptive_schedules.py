"""ReduceLROnPlateau and OneCycleLR step by step against PyTorch's; clip_grad_norm_ without
gradients."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad import optim

METRICS = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.49999, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]


def _pair(torch, opt="sgd", groups=1):
    ours = [dg.zeros(2, requires_grad=True) for _ in range(groups)]
    theirs = [torch.zeros(2, requires_grad=True) for _ in range(groups)]
    ours_groups = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(ours)]
    theirs_groups = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(theirs)]
    if opt == "sgd":
        return optim.SGD(ours_groups, lr=0.1, momentum=0.9), torch.optim.SGD(theirs_groups, lr=0.1, momentum=0.9)
    return optim.Adam(ours_groups, lr=0.1), torch.optim.Adam(theirs_groups, lr=0.1)


@pytest.mark.oracle
@pytest.mark.parametrize("options", [
    {}, {"patience": 1, "factor": 0.5}, {"mode": "max", "patience": 0, "cooldown": 2},
    {"patience": 1, "threshold_mode": "abs", "threshold": 0.05, "min_lr": [0.02, 0.05]},
    {"patience": 0, "factor": 0.5, "min_lr": 0.0999, "eps": 1e-3},
], ids=["defaults", "patience1", "max_cooldown", "abs_min_lr", "eps"])
def test_reduce_lr_on_plateau_follows_pytorch(torch, options):
    ours_opt, theirs_opt = _pair(torch, groups=2)
    ours = optim.ReduceLROnPlateau(ours_opt, **options)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **options)
    for epoch, metric in enumerate(METRICS):
        ours.step(dg.tensor(metric, dtype="float64"))
        theirs.step(metric)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15), epoch
        assert ours.num_bad_epochs == theirs.num_bad_epochs and ours.best == theirs.best
    state = ours.state_dict()
    again = optim.lr_scheduler.ReduceLROnPlateau(ours_opt, **options)
    again.load_state_dict(state)
    assert again.best == ours.best and again.cooldown_counter == ours.cooldown_counter
    with pytest.raises(ValueError, match=r"factor must be in \[0, 1\)"):
        optim.ReduceLROnPlateau(ours_opt, factor=1.0)


@pytest.mark.oracle
@pytest.mark.parametrize("options", [
    {"opt": "sgd"}, {"opt": "adam"}, {"opt": "sgd", "three_phase": True, "anneal_strategy": "linear"},
    {"opt": "adam", "pct_start": 0.5, "div_factor": 10.0, "final_div_factor": 100.0, "cycle_momentum": False},
], ids=["sgd", "adam", "three_phase_linear", "no_momentum"])
def test_one_cycle_follows_pytorch(torch, options):
    options = dict(options)
    ours_opt, theirs_opt = _pair(torch, options.pop("opt"), groups=2)
    ours = optim.OneCycleLR(ours_opt, max_lr=[1.0, 2.0], epochs=3, steps_per_epoch=7, **options)
    theirs = torch.optim.lr_scheduler.OneCycleLR(theirs_opt, max_lr=[1.0, 2.0], epochs=3, steps_per_epoch=7,
                                                 **options)
    key = "betas" if "betas" in ours_opt.defaults else "momentum"
    for step in range(21):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-14, abs=1e-18), step
        for mine, its in zip(ours_opt.param_groups, theirs_opt.param_groups):
            assert np.allclose(np.atleast_1d(mine[key]), np.atleast_1d(its[key]), rtol=1e-14), step
        if step < 20:
            ours_opt.step()
            ours.step()
            theirs_opt.step()
            theirs.step()
    with pytest.raises(ValueError, match="stepped 22 times, but total_steps is 21"):
        ours.step()
        ours.step()


def test_one_cycle_mistakes_are_named():
    w = dg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="give total_steps, or epochs and steps_per_epoch"):
        optim.OneCycleLR(optim.SGD([w], lr=0.1, momentum=0.9), max_lr=1.0)
    with pytest.raises(ValueError, match="cycle_momentum needs an optimizer with momentum or betas"):
        optim.OneCycleLR(optim.Adagrad([w], lr=0.1), max_lr=1.0, total_steps=5)


@pytest.mark.oracle
def test_clip_grad_norm_without_gradients_returns_zero_as_pytorch(torch, device):
    params = [dg.zeros(3, requires_grad=True, device=device)]
    total = optim.clip_grad_norm_(params, 1.0)
    assert total.item() == torch.nn.utils.clip_grad_norm_([torch.zeros(3, requires_grad=True)], 1.0).item() == 0.0
    assert total.device is device and optim.clip_grad_norm_([], 1.0).item() == 0.0
