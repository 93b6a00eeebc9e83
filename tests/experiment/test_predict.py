"""Using a trained run: model.json, ``devgrad.experiment.load`` and ``devgrad predict``.

Every task (binary, multiclass with text labels from a CSV, regression) with every hidden
activation: the loaded model's predictions on the test split give the metrics the trainer
computed on it, from Python and from the command line (a CSV with its columns shuffled and
the target present, and an NPZ).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from devgrad import cli
from devgrad.data import DataError
from devgrad.experiment import RunError, TrainedModel, load, model_info, run
from tests.support.trained_runs import ACTIVATIONS, ANIMALS, TASKS, held_out, spec_for, trained


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("trained")


def metrics_from(trained_model: TrainedModel, X, y) -> dict:
    predictions = trained_model.predict(X)
    if trained_model.task == "classification":
        return {"accuracy": float(np.mean(predictions.astype(str) == y.astype(str)))}
    error = predictions - y
    return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error))),
            "r2": 1 - float(error @ error) / float(((y - y.mean()) ** 2).sum())}


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("task", TASKS)
def test_loaded_model_gives_the_trainers_test_metrics(task, activation, root):
    result = trained(task, activation, root)
    best = load(result.run_dir)
    assert best.epoch == result.summary["best_epoch"] and best.checkpoint.name == "best.npz"
    model = load(result.run_dir, checkpoint="last")  # the test split was evaluated with the last weights
    assert model.task == ("regression" if task == "regression" else "classification")
    assert model.epoch == result.summary["epochs_run"] and model.checkpoint.name == "last.npz"
    assert not model.model.training and model.device.name == "cpu" and model.spec.model.activation == activation
    X, y = held_out(model.spec)
    expected = {k.removeprefix("test_"): v for k, v in result.summary["test"].items() if k != "test_loss"}
    assert metrics_from(model, X, y) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_predictions_are_class_values_of_their_own_type_and_probabilities_in_class_order(root):
    model = load(trained("multiclass", "relu", root).run_dir)
    assert model.classes.tolist() == list(ANIMALS) and model.feature_names == ["length", "height", "weight"]
    X, _ = held_out(model.spec)
    predicted = model.predict(X)
    assert predicted.dtype.kind == "U" and set(predicted) <= set(ANIMALS)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1)
    assert (model.classes[proba.argmax(axis=1)] == predicted).all()
    assert model.predict(X[0]).shape == (1,) and model.predict(X[0])[0] == predicted[0]  # one row (features,)
    binary = load(trained("binary", "relu", root).run_dir)
    assert binary.predict(np.zeros((3, 2))).dtype == np.int64 and binary.classes.tolist() == [0, 1]
    p = binary.predict_proba(held_out(binary.spec)[0])
    assert np.allclose(p.sum(axis=1), 1) and ((p[:, 1] > 0.5) == (binary.predict(held_out(binary.spec)[0]) == 1)).all()
    regression = load(trained("regression", "relu", root).run_dir)
    assert regression.classes is None
    with pytest.raises(RunError, match="regression.*no class probabilities"):
        regression.predict_proba(np.zeros((1, 10)))


class Table:
    """A table object as pandas' DataFrame looks to devgrad: ``.columns`` and ``.to_numpy()``."""

    def __init__(self, columns, rows):
        self.columns = list(columns)
        self.rows = rows

    def to_numpy(self):
        return np.array(self.rows, dtype=object)


def test_inputs_may_be_tensors_tables_and_files_with_columns_matched_by_name(root, tmp_path):
    import devgrad as dg

    model = load(trained("multiclass", "tanh", root).run_dir)
    X, y = held_out(model.spec)
    expected = model.predict(X)
    assert (model.predict(dg.tensor(X, dtype="float64")) == expected).all()
    # a table in another column order, with the target and an unrelated column in it
    rows = [[label, w, "note", h, length] for (length, h, w), label in zip(X.tolist(), y)]
    assert (model.predict(Table(["species", "weight", "remark", "height", "length"], rows)) == expected).all()
    # a dict of columns, as a DataFrame is built from; one value per column is one row
    assert (model.predict({"weight": X[:, 2], "length": X[:, 0], "height": X[:, 1]}) == expected).all()
    assert (model.predict(dict(zip(["length", "height", "weight"], X[0]))) == expected[:1]).all()
    path = tmp_path / "rows.csv"
    path.write_text("weight,length,height\n" + "".join(f"{w!r},{a!r},{h!r}\n" for a, h, w in X.tolist()))
    assert (model.predict(path) == expected).all() and (model.predict(str(path)) == expected).all()
    path.write_text("\ufeff" + path.read_text(), encoding="utf-8")  # as spreadsheet programs save CSV
    assert (model.predict(path) == expected).all()
    np.savez(tmp_path / "rows.npz", X=X)
    assert (model.predict(tmp_path / "rows.npz") == expected).all()


@pytest.mark.parametrize(("data", "message"), [
    (lambda X: Table(["length", "weight"], X[:, [0, 2]].tolist()), r"no column 'height'.*takes length, height, "
                                                                    r"weight.*has length, weight"),
    (lambda X: X[:, :2], r"shape \(\d+x2\).*takes 3 features per row \(length, height, weight\)"),
    (lambda X: Table(["length", "height", "weight"], [[1.0, "tall", 3.0]]), r"row 0, column 'height': 'tall' is "
                                                                            "not a number"),
    (lambda X: np.array([[1.0, 2.0, 3.0], [1.0, np.nan, 3.0]]), r"row 1, column 'height': nan is not a finite"),
    (lambda X: X[:0], "no rows"),
])
def test_bad_inputs_are_errors_naming_the_column_and_row(data, message, root):
    model = load(trained("multiclass", "tanh", root).run_dir)
    X, _ = held_out(model.spec)
    with pytest.raises(DataError, match=message):
        model.predict(data(X))


def test_model_json_holds_features_scalings_and_class_values_of_their_own_type(root):
    info = model_info.read(trained("multiclass", "tanh", root).run_dir)
    assert info["task"] == "classification" and info["dtype"] == "float32"
    assert info["architecture"] == {"type": "MLP", "sizes": [3, 5, 3], "activation": "tanh", "bias": True,
                                    "dropout": 0.0, "norm": "none"}
    assert info["features"] == {"names": ["length", "height", "weight"], "target": "species"}
    assert info["output"]["classes"] == {"type": "str", "values": list(ANIMALS)}
    assert 250 < info["standardize"]["mean"][2] < 350 and 30 < info["standardize"]["std"][2] < 70
    binary = model_info.read(trained("binary", "tanh", root).run_dir)
    assert binary["output"]["classes"] == {"type": "int", "values": [0, 1]}
    assert binary["features"]["names"] == ["x0", "x1"]
    reg = model_info.read(trained("regression", "tanh", root).run_dir)
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


# -- devgrad predict ----------------------------------------------------------------------------

def write_shuffled_csv(path, model: TrainedModel, X, y) -> None:
    """The rows as a CSV whose columns are in another order than the model's, the target among them."""
    names = [*model.feature_names[::-1], model.target]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([names[-1], *names[:-1]])
        for row, label in zip(X[:, ::-1].tolist(), y.tolist()):
            writer.writerow([label, *(repr(v) for v in row)])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("task", TASKS)
def test_devgrad_predict_writes_predictions_and_the_trainers_metrics(task, activation, root, tmp_path, capsys):
    result = trained(task, activation, root)
    model = load(result.run_dir, checkpoint="last")  # the weights the trainer measured the test split with
    X, y = held_out(model.spec)
    data = tmp_path / "held_out.csv"
    write_shuffled_csv(data, model, X, y)
    proba = ["--proba"] if task != "regression" else []
    assert cli.main(["predict", str(result.run_dir), str(data), *proba, "--checkpoint", "last", "--quiet"]) == 0
    out = result.run_dir / "predictions" / "held_out.csv"
    assert str(out) in capsys.readouterr().out
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected = model.predict(X)
    assert len(rows) == len(X) and [r["prediction"] for r in rows] == [str(v) for v in expected.tolist()]
    if proba:
        assert list(rows[0]) == ["prediction", *map(str, model.classes.tolist())]
    metrics = json.loads(out.with_name("held_out.metrics.json").read_text())
    wanted = {k.removeprefix("test_"): v for k, v in result.summary["test"].items() if k != "test_loss"}
    assert {k: v for k, v in metrics.items() if k != "rows"} == pytest.approx(wanted, rel=1e-6, abs=1e-9)
    # the same rows as an NPZ (X, y), written where --out says; the first file is never overwritten
    np.savez(tmp_path / "held_out.npz", X=X, y=y)
    assert cli.main(["predict", str(result.run_dir), str(tmp_path / "held_out.npz"), "--out",
                     str(tmp_path / "npz.csv"), "--checkpoint", "last", "--quiet"]) == 0
    assert (tmp_path / "npz.csv").read_text().splitlines()[1:] == [str(v) for v in expected.tolist()]
    assert json.loads((tmp_path / "npz.metrics.json").read_text())["rows"] == len(X)
    before = out.read_text()
    assert cli.main(["predict", str(result.run_dir), str(data), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == before


def expect_exit_2(capsys, args, message):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("devgrad: error: ") and "Traceback" not in err
    assert message in err, err


def test_devgrad_predict_errors_exit_2_and_write_nothing(root, tmp_path, capsys):
    run_dir = trained("multiclass", "relu", root).run_dir
    model = load(run_dir, quiet=True)
    X, y = held_out(model.spec)
    good = tmp_path / "good.csv"
    write_shuffled_csv(good, model, X, y)
    regression = trained("regression", "relu", root).run_dir
    files_before = sorted(run_dir.rglob("*")) + sorted(regression.rglob("*"))
    cases = {
        "missing.csv": ("species,length,weight\ncat,1,2\n", "no column 'height'"),
        "text.csv": ("length,height,weight\n1,2,3\n1,tall,3\n", "line 3, column 'height': 'tall' is not a number"),
        "nan.csv": ("length,height,weight\n1,nan,3\n", "line 2, column 'height': nan is not a finite number"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        expect_exit_2(capsys, ["predict", str(run_dir), str(tmp_path / name)], message)
    np.savez(tmp_path / "wide.npz", X=np.zeros((2, 4)))
    expect_exit_2(capsys, ["predict", str(run_dir), str(tmp_path / "wide.npz")], "takes 3 features per row")
    expect_exit_2(capsys, ["predict", str(tmp_path), str(good)], "is not a run folder")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    expect_exit_2(capsys, ["predict", str(run_dir), str(good), "--out", str(blocker / "p.csv")], "not a folder")
    expect_exit_2(capsys, ["predict", str(regression), str(good), "--proba"], "--proba")
    assert sorted(run_dir.rglob("*")) + sorted(regression.rglob("*")) == files_before  # nothing written


def test_best_falls_back_to_last_and_says_so(tmp_path, capsys):
    spec = spec_for("binary", tmp_path)
    spec["train"]["checkpoint"] = {"save_best": False}
    result = run(spec, out=tmp_path / "runs", quiet=True)
    model = load(result.run_dir)
    assert model.checkpoint.name == "last.npz" and model.epoch == 4
    assert "no best checkpoint; using the last one" in capsys.readouterr().err.replace(" (train.checkpoint.save_best "
                                                                                       "off, or no epoch was measured)",
                                                                                       "")
    assert load(result.run_dir, checkpoint="last").epoch == 4


def test_a_run_without_checkpoint_or_model_json_or_with_a_damaged_checkpoint_is_a_clear_error(root, tmp_path,
                                                                                            capsys):
    result = run(spec_for("binary", tmp_path), out=tmp_path / "runs", quiet=True)
    run_dir = result.run_dir
    best = run_dir / "checkpoints" / "best.npz"
    best.write_bytes(best.read_bytes()[:300])  # cut short, as by a full disk
    with pytest.raises(RunError, match=r"best\.npz.*truncated or corrupted.*--checkpoint last"):
        load(run_dir)
    expect_exit_2(capsys, ["export", str(run_dir)], "truncated or corrupted")
    assert load(run_dir, checkpoint="last").epoch == 4
    for name in ("best.npz", "last.npz"):
        (run_dir / "checkpoints" / name).unlink()
    with pytest.raises(RunError, match="has no checkpoint: the run stopped before its first one"):
        load(run_dir)
    (run_dir / "model.json").unlink()
    with pytest.raises(RunError, match=r"no model\.json.*class values.*run its spec again.*devgrad run .*config"):
        load(run_dir)
    expect_exit_2(capsys, ["predict", str(run_dir), str(tmp_path / "any.csv")], "no model.json")
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps({**meta, "status": "stopped"}))
    with pytest.raises(RunError, match=r"no model\.json.*resume it \(devgrad resume"):
        load(run_dir)


def test_loading_onto_each_device_predicts_the_same(device, root):
    run_dir = trained("multiclass", "tanh", root).run_dir
    on_device = load(run_dir, device=device, quiet=True)
    assert on_device.device is device and all(p.device is device for p in on_device.model.parameters())
    X, _ = held_out(on_device.spec)
    on_cpu = load(run_dir, device="cpu", quiet=True)
    assert (on_device.predict(X) == on_cpu.predict(X)).all()
    np.testing.assert_allclose(on_device.predict_proba(X), on_cpu.predict_proba(X), rtol=1e-5, atol=1e-7)


@pytest.mark.slow  # two fresh Python processes
def test_the_installed_command_predicts_and_refuses_bad_data_without_a_traceback(root, tmp_path):
    from tests.support.run_helpers import cli as command

    run_dir = trained("binary", "tanh", root).run_dir
    (tmp_path / "rows.csv").write_text("x1,x0\n0.5,1.0\n-1,0\n")
    done = command("predict", run_dir, tmp_path / "rows.csv", "--out", tmp_path / "p.csv", "--proba")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "prediction,0,1"
    (tmp_path / "bad.csv").write_text("x1,x0\n0.5,\n")
    refused = command("predict", run_dir, tmp_path / "bad.csv", "--out", tmp_path / "q.csv")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "bad.csv, line 2, column 'x0': '' is not a number" in refused.stderr
    assert not (tmp_path / "q.csv").exists()


@pytest.mark.parametrize("standardize", [True, False])
def test_a_run_on_idx_images_predicts_from_the_files_own_pixel_values(standardize, tmp_path):
    import gzip
    import struct

    from devgrad.data import build_splits

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200).astype(np.uint8)
    images = (rng.integers(0, 120, (200, 3, 3)) + 120 * labels[:, None, None] * (rng.random((200, 3, 3)) < 0.5))
    for name, array in (("img.idx.gz", images.astype(np.uint8)), ("lab.idx.gz", labels)):
        header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        with gzip.open(tmp_path / name, "wb") as fh:
            fh.write(header + array.tobytes())
    spec = {"name": "pixels", "seed": 1, "device": "cpu", "plots": {"enabled": False},
            "data": {"source": "idx", "images": str(tmp_path / "img.idx.gz"), "labels": str(tmp_path / "lab.idx.gz"),
                     "standardize": standardize},
            "model": {"hidden": [4]}, "train": {"epochs": 3, "batch_size": 32}}
    result = run(spec, out=tmp_path / "runs", quiet=True)
    model = load(result.run_dir, checkpoint="last")
    splits = build_splits(model.spec.data.to_dict(), 1, "auto", "auto")
    raw = np.rint(splits.raw_input(splits.X_test) * 255).reshape(-1, 3, 3).astype(np.uint8)  # the file's bytes
    np.savez(tmp_path / "test.npz", X=raw, y=splits.y_test.astype(np.uint8))
    assert cli.main(["predict", str(result.run_dir), str(tmp_path / "test.npz"), "--checkpoint", "last",
                     "--out", str(tmp_path / "p.csv"), "--quiet"]) == 0
    accuracy = json.loads((tmp_path / "p.metrics.json").read_text())["accuracy"]
    assert accuracy == pytest.approx(result.summary["test"]["test_accuracy"], abs=1e-9)
    import devgrad as dg

    trainer_view = model.model(dg.tensor(splits.X_test.astype(np.float32))).numpy().astype(np.float64)
    np.testing.assert_allclose(model.predict_proba(raw.reshape(len(raw), -1)), model.proba_outputs(trainer_view),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.oracle
def test_the_pages_python_examples_run_on_a_real_run_folder(root, tmp_path, monkeypatch, torch):
    """docs/use-a-trained-model.md's Python blocks, in order, with its example run folder replaced
    by a real one and the names it leaves to the reader (rows, mlp, mean, std) given."""
    import re

    import devgrad as dg
    from devgrad.experiment.export import export_run
    from tests.support.run_helpers import ROOT

    pytest.importorskip("onnxruntime")
    run_dir = trained("multiclass", "relu", root).run_dir
    if not (run_dir / "export" / "model.onnx").exists():
        export_run(run_dir, quiet=True)
    monkeypatch.chdir(tmp_path)
    model = load(run_dir, quiet=True)
    X, y = held_out(model.spec)
    write_shuffled_csv(tmp_path / "new_animals.csv", model, X, y)
    dg.save(dg.nn.MLP([4, 8, 3], activation="tanh", generator=0).state_dict(), tmp_path / "model.safetensors")
    page = (ROOT / "docs" / "use-a-trained-model.md").read_text(encoding="utf-8")
    page = page.replace("runs/animals/20261207-101500-a1b2c3", str(run_dir))
    namespace = {"rows": X, "mlp": dg.nn.MLP([4, 6, 2], generator=0), "mean": np.zeros(4), "std": np.ones(4)}
    for block in re.findall(r"^```python\n(.*?)^```", page, re.S | re.M):
        exec(compile(block, "use-a-trained-model.md", "exec"), namespace)
    assert (namespace["classes"][namespace["label"]] == model.predict(X)).all()
    assert namespace["t"][0, 0].item() == 10.0 and (tmp_path / "mlp.onnx").exists()


def test_a_failed_write_leaves_neither_file_nor_the_folders_it_made(root, tmp_path, monkeypatch, capsys):
    run_dir = trained("binary", "tanh", root).run_dir
    model = load(run_dir, quiet=True)
    X, y = held_out(model.spec)
    np.savez(tmp_path / "rows.npz", X=X, y=y.astype(np.int64))
    from devgrad.io import atomic_write as real

    def full_disk(path, payload):
        if str(path).endswith(".json"):
            raise OSError(28, "No space left on device", str(path))
        return real(path, payload)

    monkeypatch.setattr("devgrad.experiment.predict.atomic_write", full_disk)
    out = tmp_path / "new" / "deeper" / "p.csv"
    assert cli.main(["predict", str(run_dir), str(tmp_path / "rows.npz"), "--out", str(out), "--quiet"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_an_npz_target_is_read_as_training_reads_it_one_hot_included(root, tmp_path, capsys):
    run_dir = trained("binary", "tanh", root).run_dir
    model = load(run_dir, checkpoint="last")
    X, y = held_out(model.spec)
    labels = y.astype(np.int64)
    np.savez(tmp_path / "labels.npz", X=X, y=labels)
    np.savez(tmp_path / "onehot.npz", X=X, y=np.eye(2, dtype=np.float32)[labels])
    for name in ("labels", "onehot"):
        assert cli.main(["predict", str(run_dir), str(tmp_path / f"{name}.npz"), "--checkpoint", "last",
                         "--out", str(tmp_path / f"{name}.csv"), "--quiet"]) == 0
    scored = [json.loads((tmp_path / f"{name}.metrics.json").read_text()) for name in ("labels", "onehot")]
    assert scored[0] == scored[1] and scored[0]["rows"] == len(X)  # not 2n misaligned labels
    (tmp_path / "text.npz").write_text("x0,x1\n1,2\n")
    expect_exit_2(capsys, ["predict", str(run_dir), str(tmp_path / "text.npz")], "not an NPZ file")


def test_numeric_csv_labels_are_integer_classes_in_model_json_predictions_and_metrics(tmp_path, capsys):
    """A CSV target written 1, 1.0 and 01 is one class, the integer 1, from training to predictions;
    a target scored against it may be written either way."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2))
    labels = np.where(X[:, 0] > 0, ["1", "1.0", "01"] * 40, "0")
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n" + "".join(f"{a!r},{b!r},{t}\n" for (a, b), t in zip(X.tolist(), labels)))
    spec = {"name": "numeric", "seed": 1, "device": "cpu", "data": {"source": "csv", "path": str(data),
            "target": "label"}, "model": {"hidden": [4]}, "train": {"epochs": 2}, "plots": {"enabled": False}}
    result = run(spec, out=tmp_path / "runs", quiet=True)
    info = model_info.read(result.run_dir)
    assert info["output"]["classes"] == {"type": "int", "values": [0, 1]} and info["output"]["loss"] == "bce"
    model = load(result.run_dir, quiet=True)
    assert model.predict(X).dtype == np.int64 and set(model.predict(X).tolist()) <= {0, 1}
    capsys.readouterr()
    assert cli.main(["predict", str(result.run_dir), str(data), "--out", str(tmp_path / "p.csv"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "p.metrics.json").read_text())
    expected = float(np.mean(model.predict(X) == (X[:, 0] > 0)))
    assert metrics["rows"] == 120 and metrics["accuracy"] == pytest.approx(expected) and "unseen_classes" not in metrics


def test_the_target_is_compared_as_the_models_classes_are_never_scored_zero_by_type(root):
    """A CSV's "0" is the class 0.0 of a model trained on float labels; numbers given for text
    classes are an error, not an accuracy of 0."""
    from types import SimpleNamespace

    from devgrad.experiment import predict
    from devgrad.experiment.inputs import Inputs

    float_model = SimpleNamespace(task="classification", classes=np.array([0.0, 1.0]))
    predicted = np.array([0.0, 1.0, 1.0])
    rows = Inputs(np.zeros((3, 1)), np.array(["0", " 1", "0"]), "data.csv")
    assert predict.metrics_of(float_model, predicted, rows)["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="holds text, but the model's classes are the numbers 0.0, 1.0"):
        predict.metrics_of(float_model, predicted, Inputs(np.zeros((3, 1)), np.array(["0", "cat", "1"]), "data.csv"))
    model = load(trained("multiclass", "relu", root).run_dir)
    X, y = held_out(model.spec)
    with pytest.raises(DataError, match="the target holds numbers"):
        predict.metrics_of(model, model.predict(X), Inputs(X, np.zeros(len(X), dtype=np.int64), "data.npz"))
    assert predict.metrics_of(model, model.predict(X), Inputs(X, y, "data.csv"))["accuracy"] > 0.5


def test_model_json_is_never_rewritten_beside_old_weights_when_the_data_changed(tmp_path, capsys):
    from tests.support.trained_runs import animals_csv

    spec = spec_for("multiclass", tmp_path, epochs=2)
    run_dir = run(spec, out=tmp_path / "runs", quiet=True).run_dir
    record = (run_dir / "model.json").read_bytes()
    assert cli.main(["plot", str(run_dir)]) == 0  # redrawing builds the run's trainer again
    assert (run_dir / "model.json").read_bytes() == record
    animals_csv(tmp_path, seed=1)  # the data file edited since: other standardisation
    capsys.readouterr()
    assert cli.main(["plot", str(run_dir)]) == 2
    assert "model.json no longer matches" in capsys.readouterr().err
    assert (run_dir / "model.json").read_bytes() == record


def test_metrics_of_rows_without_a_target_is_a_clear_error():
    """Scoring rows that carry no target says so instead of failing inside the comparison."""
    from types import SimpleNamespace

    from devgrad.experiment import predict
    from devgrad.experiment.inputs import Inputs

    model = SimpleNamespace(task="classification", classes=np.array([0.0, 1.0]))
    with pytest.raises(DataError, match="data.csv: no target column"):
        predict.metrics_of(model, np.array([0.0, 1.0]), Inputs(np.zeros((2, 1)), None, "data.csv"))


def test_a_hinge_loss_models_margins_are_never_given_as_probabilities(tmp_path, capsys):
    spec = {**spec_for("binary", tmp_path), "loss": "hinge", "task": "classification"}
    result = run(spec, out=tmp_path / "runs", quiet=True)
    model = load(result.run_dir, quiet=True)
    rows = np.array([[0.5, 0.2], [-1.0, 0.8]])
    with pytest.raises(RunError, match="loss: hinge, whose outputs are margins, not probabilities"):
        model.predict_proba(rows)
    np.testing.assert_array_equal(model.predict(rows), model.classes[(model.outputs(rows)[:, 0] > 0).astype(int)])
    data = tmp_path / "rows.npz"
    np.savez(data, X=rows)
    out = tmp_path / "p.csv"
    assert cli.main(["predict", str(result.run_dir), str(data), "--proba", "--out", str(out)]) == 2
    assert "leave out --proba" in capsys.readouterr().err and not out.exists()
    assert cli.main(["predict", str(result.run_dir), str(data), "--out", str(out)]) == 0 and out.exists()


def test_a_class_named_prediction_keeps_the_predictions_column(tmp_path, capsys):
    """--proba names a probability column by its class; a class called "prediction" would take
    the predictions' column, so then every probability column is proba_<class>."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2))
    kinds = np.where(X[:, 0] + X[:, 1] > 0, "prediction", "other")
    data = tmp_path / "kinds.csv"
    data.write_text("f1,f2,kind\n" + "".join(f"{a!r},{b!r},{k}\n" for (a, b), k in zip(X.tolist(), kinds)))
    spec = {"name": "kinds", "seed": 0, "device": "cpu", "data": {"source": "csv", "path": str(data), "target": "kind"},
            "model": {"hidden": [4]}, "plots": {"enabled": False}, "train": {"epochs": 3}}
    run_dir = run(spec, out=tmp_path / "runs", quiet=True).run_dir
    out = tmp_path / "p.csv"
    assert cli.main(["predict", str(run_dir), str(data), "--proba", "--out", str(out), "--quiet"]) == 0
    with open(out) as fh:
        rows = list(csv.reader(fh))
    model = load(run_dir, quiet=True)
    assert rows[0] == ["prediction", *(f"proba_{c}" for c in model.classes)]
    assert [r[0] for r in rows[1:]] == model.predict(data).tolist()
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], dtype=float), model.predict_proba(data))


def test_weights_or_outputs_that_are_inf_or_nan_give_an_error_not_class_zero(root, tmp_path):
    from devgrad.experiment import checkpoint as ckpt

    source = trained("multiclass", "relu", root).run_dir
    model = load(source, quiet=True)
    X, _ = held_out(model.spec)
    with pytest.raises(RunError, match=r"outputs are inf or NaN for 1 of 2 rows \(the first: row 1"):
        model.predict(np.array([X[0], [1e308, 1e308, 1e308]]))
    with pytest.raises(RunError, match="outputs are inf or NaN"):
        model.predict_proba(np.array([[1e308, 1e308, 1e308]]))
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    state = ckpt.load_checkpoint(copy / "checkpoints" / "best.npz")
    name = next(iter(state["model"]))
    state["model"][name] = state["model"][name].numpy() * np.inf
    ckpt.save(state, copy / "checkpoints" / "best.npz")
    with pytest.raises(RunError, match=rf"best.npz holds weights that are inf or NaN \({name}\).*--checkpoint last"):
        load(copy, quiet=True)
    assert set(load(copy, checkpoint="last", quiet=True).predict(X[:3])) <= set(ANIMALS)  # the other file loads
