"""devgrad.experiment.trainer: what a run sets up around its epochs."""

from __future__ import annotations

import devgrad as dg
from devgrad.experiment import run
from devgrad.experiment import trainer as trainer_module
from tests.run_helpers import SMALL


def test_matmul_precision_applies_during_the_run_and_is_put_back(tmp_path, monkeypatch):
    seen = []
    real = trainer_module.set_float32_matmul_precision

    def recording(value):
        seen.append(value)
        real(value)

    monkeypatch.setattr(trainer_module, "set_float32_matmul_precision", recording)
    result = run({**SMALL, "train": {**SMALL["train"], "epochs": 1, "matmul_precision": "high"}}, out=tmp_path,
                 quiet=True)
    assert result.status == "completed"
    assert seen == ["high", "highest"] and dg.get_float32_matmul_precision() == "highest"


def test_numeric_overflow_in_a_run_is_reported_as_divergence_not_as_numpy_warnings(tmp_path, recwarn):
    spec = {**SMALL, "loss": "mse", "optimizer": {"name": "sgd", "lr": 1e8},
            "model": {"hidden": [16], "activation": "relu"}, "train": {"epochs": 3, "batch_size": 8}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "failed"
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
