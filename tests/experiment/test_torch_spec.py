"""What a spec takes from PyTorch's nn for an MLP: the new activations by name, model.norm
(layer or batch, after each hidden Linear and before its activation), and the schedules plateau
and onecycle; each with its own checks."""

from __future__ import annotations

import numpy as np
import pytest

from devgrad import nn
from devgrad.experiment import SpecError, load, resolve, run
from tests.support.run_helpers import SMALL, SMALL_NO_PLOTS


def test_a_batch_norm_gelu_run_with_plateau_trains_saves_and_loads(tmp_path):
    spec = {**SMALL_NO_PLOTS, "model": {"hidden": [6], "activation": "gelu", "norm": "batch"},
            "schedule": {"name": "plateau", "patience": 0, "factor": 0.5, "threshold": 0.5},
            "train": {"epochs": 4, "batch_size": 32}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "completed"
    rates = [row["lr"] for row in result.history]
    assert rates[0] == 0.05 and rates[-1] < rates[0]  # the plateau lowered the rate
    assert "model.norm is batch" in result.summary["capture"]["why_not"]
    model = load(result.run_dir, checkpoint="last")
    kinds = [type(m).__name__ for m in model.model.net]
    assert kinds == ["Linear", "BatchNorm1d", "GELU", "Linear"]
    norm = model.model.net[1]
    assert not norm.training and norm.num_batches_tracked.item() > 0
    assert np.abs(norm.running_mean.numpy()).sum() > 0  # the running statistics came back from the checkpoint
    probs = model.predict_proba(np.random.default_rng(0).standard_normal((5, 2)))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_a_layer_norm_silu_run_with_onecycle_follows_the_cycle(tmp_path):
    spec = {**SMALL_NO_PLOTS, "model": {"hidden": [6], "activation": "silu", "norm": "layer"},
            "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
            "schedule": {"name": "onecycle", "max_lr": 0.2}, "train": {"epochs": 5, "batch_size": 64}}
    result = run(spec, out=tmp_path, quiet=True)
    rates = [row["lr"] for row in result.history]
    assert rates[0] == pytest.approx(0.2 / 25) and max(rates) == pytest.approx(0.2, rel=0.2) and rates[-1] < rates[2]
    assert result.summary["capture"]["active"]  # a layer norm step is captured like any other


@pytest.mark.parametrize(("block", "where", "message"), [
    ({"model": {"hidden": [], "norm": "layer"}}, "model.norm", "model.hidden is empty"),
    ({"model": {"hidden": [4], "norm": "batch"}, "train": {"batch_size": 1}}, "model.norm",
     "train.batch_size is 1"),
    ({"model": {"hidden": [4], "norm": "group"}}, "model.norm", "layer"),
    ({"model": {"hidden": [4], "norm": "batch"}, "train": {"capture": True}}, "train.capture",
     "running statistics change inside the forward pass"),
    ({"schedule": {"name": "onecycle"}}, "schedule.max_lr", ""),
    ({"schedule": {"name": "onecycle", "max_lr": 0.1, "warmup_epochs": 2}}, "schedule.warmup_epochs",
     "pct_start is its warm-up"),
    ({"schedule": {"name": "plateau"}, "train": {"early_stopping": {"monitor": "val_accuracy"}}}, "schedule.mode",
     "set mode: max"),
    ({"schedule": {"name": "plateau", "factor": 2.0}}, "schedule.factor", "factor must be in [0, 1)"),
])
def test_norm_and_schedule_mistakes_are_named(block, where, message):
    spec = {**SMALL, **block}
    with pytest.raises(SpecError) as info:
        resolve(spec)
    assert where in str(info.value) and message in str(info.value)


def test_every_hidden_activation_and_norm_is_a_spec_name():
    for name in ("gelu", "silu", "elu", "hardtanh", "mish"):
        assert resolve({**SMALL, "model": {"hidden": [4], "activation": name}}).model.activation == name
    assert set(resolve(SMALL).to_dict()["model"]) >= {"norm"} and tuple(nn.NORMS) == ("none", "layer", "batch")
