"""Tiny trained runs of every task with every hidden activation, trained once per test run
and shared by the tests that use them (prediction, ONNX export)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devgrad import nn
from devgrad.data import build_splits
from devgrad.experiment import run

TASKS = ("binary", "multiclass", "regression")
ACTIVATIONS = nn.HIDDEN_ACTIVATIONS  # every activation a spec's model.activation may name
ANIMALS = ("cat", "dog", "eel")
_RUNS: dict = {}


def animals_csv(folder: Path, n: int = 240, seed: int = 0) -> Path:
    """Three text classes from three features on different scales (the class is the feature
    furthest above its typical value)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * [1.0, 2.0, 50.0] + [0.0, 5.0, 300.0]
    score = np.stack([X[:, 0], (X[:, 1] - 5) / 2, (X[:, 2] - 300) / 50], axis=1)
    y = np.array(ANIMALS)[score.argmax(axis=1)]
    path = folder / "animals.csv"
    lines = ["length,height,species,weight"] + [f"{a!r},{b!r},{s},{w!r}" for (a, b, w), s in zip(X.tolist(), y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def spec_for(task: str, folder: Path, activation: str = "tanh", epochs: int = 4) -> dict:
    """A tiny run: binary (a generator), multiclass (text labels from a CSV), regression (diabetes)."""
    spec = {"name": f"{task}-{activation}", "seed": 2, "device": "cpu",
            "model": {"hidden": [5], "activation": activation}, "optimizer": {"name": "adam", "lr": 0.05},
            "plots": {"enabled": False}, "train": {"epochs": epochs, "batch_size": 32}}
    if task == "binary":
        spec["data"] = {"source": "moons", "n_samples": 200, "noise": 0.1}
    elif task == "multiclass":
        spec["data"] = {"source": "csv", "path": str(animals_csv(folder)), "target": "species"}
    else:
        spec["data"] = {"source": "sklearn:diabetes"}
        spec["loss"] = "mse"
    return spec


def trained(task: str, activation: str, root: Path):
    """The RunResult of the tiny ``task`` run with ``activation`` (trained on first use, under ``root``)."""
    key = (task, activation)
    if key not in _RUNS:
        folder = root / f"{task}-{activation}"
        folder.mkdir(parents=True, exist_ok=True)
        _RUNS[key] = run(spec_for(task, folder, activation), out=folder / "runs", quiet=True)
    return _RUNS[key]


def held_out(spec):
    """The test split of a resolved spec, in the data's own units: (raw X, labels or target values)."""
    splits = build_splits(spec.data.to_dict(), spec.seed, spec.task, spec.loss.name)
    X = splits.raw_input(splits.X_test)
    if splits.regression:
        return X, splits.target_values(splits.y_test)
    return X, np.array(splits.classes)[splits.y_test]
