"""Regression as a first-class task: a continuous target is never turned into classes.

Through the CLI as a user runs it: task inferred from an mse/mae/huber loss and a continuous
target (and said why in the log), metrics mse, mae and r2 in the target's units (its
standardisation undone), the predicted-vs-true plot, and the errors that point a user from a
continuous target given to classification to ``task: regression``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from devgrad.data import build_splits
from devgrad.experiment import resolve, run
from tests.support.run_helpers import HAVE_MATPLOTLIB, cli, only_run_dir, write_spec


def _linear_csv(folder, n=300, seed=0, noise=0.0):
    """y = 1000 + 500·x1 − 200·x2 (+ noise): a target far from 0 with a large scale."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = 1000 + 500 * X[:, 0] - 200 * X[:, 1] + noise * rng.standard_normal(n)
    path = folder / "houses.csv"
    lines = ["size,age,price"] + [f"{a:.6f},{b:.6f},{t:.4f}" for (a, b), t in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


NO_PLOTS = {"enabled": False}  # for the runs whose pictures no test here looks at


def _spec(path, target="price", **extra):
    spec = {"name": "houses", "seed": 1, "device": "cpu",
            "data": {"source": "csv", "path": str(path), "target": target},
            "model": {"hidden": []}, "loss": "mse", "optimizer": {"name": "adam", "lr": 0.05},
            "train": {"epochs": 60, "batch_size": 32}}
    spec.update(extra)
    return spec


@pytest.mark.slow
def test_a_continuous_target_with_mse_runs_as_regression_in_the_targets_units(tmp_path):
    spec = write_spec(tmp_path, _spec(_linear_csv(tmp_path, noise=30.0)))
    result = cli("run", spec, "--out", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "runs", "houses")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "regression" and "continuous" in summary["task_reason"]
    assert "task: regression (task auto: regression, because the loss is mse" in (run_dir / "train.log").read_text()
    test = summary["test"]
    assert set(test) == {"test_loss", "test_mse", "test_mae", "test_r2"}
    assert test["test_r2"] > 0.99  # a linear target with noise of std 30: a linear model fits it
    assert 10 < test["test_mae"] < 40  # noise-sized in price units (std ~540): the standardisation is undone
    # the loss is on standardised targets, mse in the target's units: mse = loss × std²
    std = build_splits(resolve(spec).data.to_dict(), 1, "regression", "mse").y_std
    assert test["test_mse"] == pytest.approx(test["test_loss"] * std**2, rel=1e-3)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"train_mse", "train_mae", "train_r2", "val_mse", "val_mae", "val_r2"} <= set(rows[-1])
    assert "accuracy" not in "".join(rows[-1])
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,lr,train_loss,train_mse,train_mae,train_r2,val_loss,val_mse,val_mae,val_r2"
    if HAVE_MATPLOTLIB:
        from matplotlib.image import imread

        image = imread(run_dir / "plots" / "predictions.png")
        assert image.shape[0] > 200 and image[..., :3].std() > 0.05  # drawn, not blank
        assert not (run_dir / "plots" / "decision_boundary.png").exists()


@pytest.mark.slow
def test_huber_and_mae_losses_train_a_regression(tmp_path):
    path = _linear_csv(tmp_path, noise=20.0)
    for loss in ("mae", {"name": "huber", "delta": 0.5}):
        result = run(_spec(path, loss=loss, task="regression", plots=NO_PLOTS), out=tmp_path / "runs", quiet=True)
        assert result.status == "completed"
        assert result.summary["test"]["test_r2"] > 0.98, loss


@pytest.mark.slow
def test_a_continuous_target_given_to_classification_is_an_error_that_suggests_regression(tmp_path):
    path = _linear_csv(tmp_path)
    for extra in ({"loss": "auto"}, {"loss": "mse", "task": "classification"}, {"loss": "cross_entropy"}):
        spec = write_spec(tmp_path, _spec(path, **extra))
        for command in ("run", "validate"):
            result = cli(command, spec, "--out", tmp_path / "runs") if command == "run" else cli(command, spec)
            assert result.returncode == 2, (extra, result.stdout, result.stderr)
            assert "column 'price'" in result.stderr and "non-integer values" in result.stderr
            assert "task: regression" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing was started


@pytest.mark.slow
def test_integer_classes_with_mse_stay_classification_and_regression_specs_are_checked(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "c.csv"
    path.write_text("a,b,label\n" + "".join(f"{a},{b},{t}\n" for (a, b), t in zip(X, y)))
    result = run(_spec(path, "label", plots=NO_PLOTS), out=tmp_path / "runs", quiet=True)
    assert result.summary["task"] == "classification" and "test_accuracy" in result.summary["test"]
    # task: regression with a classification loss or metric: exit 2 before anything runs
    for extra, message in (({"task": "regression", "loss": "bce"}, "bce is a classification loss"),
                           ({"task": "regression", "metrics": ["accuracy"]}, "accuracy is a classification metric"),
                           ({"task": "classification", "metrics": ["r2"]}, "r2 is a regression metric")):
        spec = write_spec(tmp_path, _spec(path, "label", **extra))
        result = cli("validate", spec)
        assert result.returncode == 2 and message in result.stderr, (extra, result.stderr)
    text = tmp_path / "t.csv"
    text.write_text("a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n")
    spec = write_spec(tmp_path, _spec(text, "label", task="regression"))
    result = cli("validate", spec)
    assert result.returncode == 2 and "needs a numeric target" in result.stderr and "'cat'" in result.stderr


@pytest.mark.slow
def test_sklearn_diabetes_is_a_regression_source(tmp_path):
    pytest.importorskip("sklearn")
    spec = write_spec(tmp_path, {"name": "d", "device": "cpu", "data": {"source": "sklearn:diabetes"},
                                 "loss": "mse", "train": {"epochs": 2}})
    result = cli("validate", spec)
    assert result.returncode == 0 and "regression with loss mse" in result.stdout, result.stderr
