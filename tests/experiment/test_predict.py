"""Using a trained run: model.json, ``devgrad.experiment.load`` and ``devgrad predict``.

Every task (binary, multiclass with text labels from a CSV, regression) with every hidden
activation: the loaded model's predictions on the test split give exactly the metrics the
trainer computed on it, from Python and from the command line.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from devgrad.experiment import model_info, run

ANIMALS = ("cat", "dog", "eel")


def animals_csv(folder, n=240, seed=0):
    """Three text classes from three features (plus a 'weight' on its own scale)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * [1.0, 2.0, 50.0] + [0.0, 5.0, 300.0]
    score = np.stack([X[:, 0], (X[:, 1] - 5) / 2, (X[:, 2] - 300) / 50], axis=1)
    y = np.array(ANIMALS)[score.argmax(axis=1)]
    path = folder / "animals.csv"
    lines = ["length,height,species,weight"] + [f"{a!r},{b!r},{s},{w!r}" for (a, b, w), s in zip(X.tolist(), y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def spec_for(task: str, folder, activation: str = "tanh", epochs: int = 4) -> dict:
    """A tiny run of each task: binary (a generator), multiclass (text labels from a CSV), regression."""
    spec = {"name": task, "seed": 2, "device": "cpu", "model": {"hidden": [5], "activation": activation},
            "optimizer": {"name": "adam", "lr": 0.05}, "plots": {"enabled": False},
            "train": {"epochs": epochs, "batch_size": 32}}
    if task == "binary":
        spec["data"] = {"source": "moons", "n_samples": 200, "noise": 0.1}
    elif task == "multiclass":
        spec["data"] = {"source": "csv", "path": str(animals_csv(folder)), "target": "species"}
    else:
        spec["data"] = {"source": "sklearn:diabetes"}
        spec["loss"] = "mse"
    return spec


def test_model_json_holds_features_scalings_and_class_values_of_their_own_type(tmp_path):
    result = run(spec_for("multiclass", tmp_path), out=tmp_path / "runs", quiet=True)
    info = model_info.read(result.run_dir)
    assert info["task"] == "classification" and info["dtype"] == "float32"
    assert info["architecture"] == {"type": "MLP", "sizes": [3, 5, 3], "activation": "tanh", "bias": True,
                                    "dropout": 0.0}
    assert info["features"] == {"names": ["length", "height", "weight"], "target": "species"}
    assert info["output"]["classes"] == {"type": "str", "values": list(ANIMALS)}
    assert 250 < info["standardize"]["mean"][2] < 350 and 30 < info["standardize"]["std"][2] < 70
    binary = model_info.read(run(spec_for("binary", tmp_path), out=tmp_path / "runs", quiet=True).run_dir)
    assert binary["output"]["classes"] == {"type": "int", "values": [0, 1]}
    assert binary["features"]["names"] == ["x0", "x1"]
    reg = model_info.read(run(spec_for("regression", tmp_path), out=tmp_path / "runs", quiet=True).run_dir)
    assert reg["task"] == "regression" and reg["output"]["kind"] == "value"
    assert 140 < reg["output"]["target_mean"] < 170 and 60 < reg["output"]["target_std"] < 90  # diabetes target


@pytest.mark.parametrize(("classes", "kind", "dtype"), [
    (["cat", "dog"], "str", "<U3"), (["0", "1", "10"], "int", "int64"), ([0, 1, 2], "int", "int64"),
    ([0.5, 1.5], "float", "float64"), ([False, True], "bool", "bool"), (["01", "1"], "str", "<U2"),
])
def test_class_values_round_trip_through_json_with_their_type(classes, kind, dtype):
    tagged = json.loads(json.dumps(model_info.tag_classes(classes)))
    assert tagged["type"] == kind
    values = model_info.class_array(tagged)
    assert values.dtype == np.dtype(dtype) and [str(v) for v in values] == [str(c) for c in classes]


def test_a_run_folder_without_model_json_says_what_is_missing_and_to_resume_or_rerun(tmp_path):
    result = run(spec_for("binary", tmp_path), out=tmp_path / "runs", quiet=True)
    (result.run_dir / "model.json").unlink()
    with pytest.raises(model_info.RunError, match=r"no model\.json.*class values.*devgrad resume"):
        model_info.read(result.run_dir)
