"""ONNX export, proven by onnxruntime: a run's exported model (its input standardisation and
task head included) gives TrainedModel's numbers for every task and hidden activation, and
``devgrad.onnx.export`` writes any MLP/Sequential of supported layers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import devgrad as dg
from devgrad import cli
from devgrad import onnx as dg_onnx
from devgrad.experiment import load, run
from devgrad.experiment.export import export_run
from devgrad.experiment.examples import EXAMPLES
from devgrad.lecture import SPECS as LECTURE_SPECS
from tests.support.trained_runs import ACTIVATIONS, TASKS, trained

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx extra (pip install onnx onnxruntime)")
ort = pytest.importorskip("onnxruntime", reason="the exported models are run by onnxruntime (the onnx extra)")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("trained")


def runtime(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def random_rows(model, n: int, seed: int = 0) -> np.ndarray:
    """Rows around the training data (its mean ± 2 std per feature), as float32 like the ONNX input."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, len(model.feature_names))) * 2 * model.std + model.mean).astype(np.float32)


def second_output(model, rows: np.ndarray) -> np.ndarray:
    """What the export's second output must hold: the probabilities, or a hinge-loss model's
    margins as scores [-d, d] (it has no probabilities)."""
    if model.info["output"]["loss"] != "hinge":
        return model.predict_proba(rows)
    d = model.outputs(rows)[:, 0]
    return np.stack([-d, d], axis=1)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("task", TASKS)
def test_exported_run_gives_trained_models_numbers_in_onnxruntime(task, activation, root, tmp_path):
    run_dir = trained(task, activation, root).run_dir
    path = tmp_path / "model.onnx"
    assert cli.main(["export", str(run_dir), "--out", str(path), "--quiet"]) == 0
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "input" and graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[0].dim_param and not dims[0].dim_value  # a symbolic batch dimension
    model = load(run_dir, quiet=True)
    served = runtime(path)
    X = random_rows(model, 1000)
    outputs = dict(zip([o.name for o in served.get_outputs()], served.run(None, {"input": X})))
    rows = X.astype(np.float64)
    if task == "regression":
        assert set(outputs) == {"value"} and outputs["value"].shape == (1000,)
        # 1e-5 relative, and near 0 (z·std + mean cancels there) 1e-5 of the target's scale
        scale = model.info["output"]["target_std"]
        np.testing.assert_allclose(outputs["value"], model.predict(rows), rtol=1e-5, atol=1e-5 * scale)
    else:
        assert set(outputs) == {"label", "probabilities"} and outputs["label"].dtype == np.int64
        meta = {p.key: p.value for p in proto.metadata_props}
        classes = np.array(json.loads(meta["classes"]), dtype=model.classes.dtype)
        assert (classes == model.classes).all() and json.loads(meta["feature_names"]) == model.feature_names
        assert (classes[outputs["label"]] == model.predict(rows)).all()
        np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(rows), rtol=1e-5)
    for n in (1, 10_000):  # one row and a large batch through the same symbolic dimension
        first = served.run(None, {"input": random_rows(model, n, seed=n)})[0]
        assert first.shape[0] == n


def test_export_of_any_sequential_with_every_activation_and_dropout(tmp_path):
    layers = [dg.nn.Linear(4, 6), dg.nn.ReLU(), dg.nn.Dropout(0.3), dg.nn.Linear(6, 6), dg.nn.LeakyReLU(0.2),
              dg.nn.Linear(6, 6), dg.nn.Sigmoid(), dg.nn.Linear(6, 6), dg.nn.Tanh(), dg.nn.Identity(),
              dg.nn.Linear(6, 6), dg.nn.Softplus(), dg.nn.Linear(6, 6), dg.nn.Softplus(beta=2.0), dg.nn.Linear(6, 6),
              dg.nn.Softplus(threshold=0.5), dg.nn.Linear(6, 6), dg.nn.Softplus(beta=0.5, threshold=0.25),
              dg.nn.Linear(6, 6),
              dg.nn.GELU(), dg.nn.Linear(6, 6), dg.nn.GELU("tanh"), dg.nn.Linear(6, 6), dg.nn.SiLU(),
              dg.nn.Linear(6, 6), dg.nn.Mish(), dg.nn.Linear(6, 6), dg.nn.ELU(0.5), dg.nn.Linear(6, 6),
              dg.nn.Hardtanh(-0.5, 0.5), dg.nn.Linear(6, 3, bias=False), dg.nn.LogSoftmax()]
    module = dg.nn.Sequential(dg.nn.Sequential(*layers[:5]), *layers[5:]).eval()
    X = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    mean, std = np.array([1.0, -2.0, 0.5, 3.0]), np.array([2.0, 0.5, 1.0, 4.0])
    path = dg_onnx.export(module, tmp_path / "seq.onnx", 4, standardize=(mean, std))
    (logits,) = runtime(path).run(None, {"input": X})
    expected = module(dg.tensor((X - mean) / std, dtype="float32")).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


def test_float64_models_compute_in_float64(tmp_path):
    mlp = dg.nn.MLP([3, 5, 2], activation="tanh", dtype="float64", generator=0)
    X = np.random.default_rng(2).standard_normal((20, 3))
    path = dg_onnx.export(mlp, tmp_path / "f64.onnx", 3)
    (logits,) = runtime(path).run(None, {"input": X.astype(np.float32)})
    assert logits.dtype == np.float64
    np.testing.assert_allclose(logits, mlp(dg.tensor(X.astype(np.float32).astype(np.float64))).numpy(), rtol=1e-12)


def test_unsupported_layers_options_and_opsets_are_clear_errors(tmp_path, root, capsys):
    class Doubler(dg.nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(dg_onnx.ExportError, match="layer 1 is a Doubler, which ONNX export does not support"):
        dg_onnx.export(dg.nn.Sequential(dg.nn.Linear(2, 2), Doubler()), tmp_path / "x.onnx", 2)
    with pytest.raises(dg_onnx.ExportError, match="n_features is 3, but the first Linear takes 2"):
        dg_onnx.export(dg.nn.MLP([2, 1]), tmp_path / "x.onnx", 3)
    with pytest.raises(dg_onnx.ExportError, match="opset 5 cannot be used"):
        dg_onnx.export(dg.nn.MLP([2, 1]), tmp_path / "x.onnx", 2, opset=5)
    assert not (tmp_path / "x.onnx").exists()
    run_dir = trained("binary", "relu", root).run_dir
    assert cli.main(["export", str(run_dir), "--opset", "5", "--out", str(tmp_path / "y.onnx")]) == 2
    assert "--opset: opset 5 cannot be used" in capsys.readouterr().err and not (tmp_path / "y.onnx").exists()
    assert cli.main(["export", str(run_dir), "--opset", "13", "--out", str(tmp_path / "y.onnx"), "--quiet"]) == 0
    assert onnx.load(str(tmp_path / "y.onnx")).opset_import[0].version == 13
    assert cli.main(["export", str(run_dir), "--out", str(tmp_path / "y.onnx")]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("name", LECTURE_SPECS)
def test_every_lecture_spec_exports_and_onnxruntime_serves_it(name, tmp_path):
    result = run(EXAMPLES / f"{name}.yaml", overrides=["train.epochs=2", "plots.enabled=false"],
                 out=tmp_path / "runs", device="cpu", quiet=True)
    path = export_run(result.run_dir, quiet=True)
    model = load(result.run_dir, quiet=True)
    X = random_rows(model, 1000)
    outputs = runtime(path).run(None, {"input": X})
    rows = X.astype(np.float64)
    if model.task == "regression":
        np.testing.assert_allclose(outputs[0], model.predict(rows), rtol=1e-5,
                                   atol=1e-5 * model.info["output"]["target_std"])
    else:
        assert (model.classes[outputs[0]] == model.predict(rows)).all()
        np.testing.assert_allclose(outputs[1], second_output(model, rows), rtol=1e-5, atol=1e-6)


def test_devgrad_onnx_is_reachable_after_import_devgrad():
    import subprocess
    import sys

    code = "import devgrad; print(devgrad.onnx.export.__name__, devgrad.experiment.load.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["export", "load"], done.stderr


@pytest.mark.parametrize("loss", ["mse", "hinge", "logistic"])
def test_one_output_classifiers_of_every_loss_keep_their_decision_rule(loss, tmp_path):
    from tests.support.trained_runs import spec_for

    spec = {**spec_for("binary", tmp_path), "loss": loss, "task": "classification"}
    result = run(spec, out=tmp_path / "runs", quiet=True)
    model = load(result.run_dir, quiet=True)
    assert model.model.sizes[-1] == 1
    served = runtime(export_run(result.run_dir, quiet=True))
    label, second = served.run(None, {"input": random_rows(model, 1000)})
    rows = random_rows(model, 1000).astype(np.float64)
    assert (model.classes[label] == model.predict(rows)).all()
    names = [o.name for o in served.get_outputs()]
    assert names == ["label", "scores" if loss == "hinge" else "probabilities"]
    # an mse fit's P(class 0) is 1 − output, which cancels near 1: compared to 1e-6 there
    np.testing.assert_allclose(second, second_output(model, rows), rtol=1e-5, atol=1e-6 if loss != "logistic" else 0)


def test_a_failed_export_leaves_no_file_or_folder_behind(root, tmp_path, monkeypatch, capsys):
    import os

    run_dir = trained("binary", "relu", root).run_dir

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)  # the last step of every atomic write
    for fmt in ("onnx", "safetensors"):
        deep = tmp_path / "a" / "b" / f"model.{fmt}"
        assert cli.main(["export", str(run_dir), "--format", fmt, "--out", str(deep), "--quiet"]) == 2
        assert "No space left on device" in capsys.readouterr().err and not (tmp_path / "a").exists()


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_mlps_with_a_norm_export_their_eval_form(tmp_path, norm, opset):
    """BatchNorm1d as its running statistics' scale and shift; LayerNorm as LayerNormalization
    (opset 17) or its few nodes (before)."""
    mlp = dg.nn.MLP([3, 6, 2], norm=norm, activation="silu", generator=0)
    for step in range(3):  # running statistics away from their 0 and 1
        mlp(dg.tensor(np.random.default_rng(step).standard_normal((8, 3)) * 2 + 1, dtype="float32"))
    mlp.eval()
    X = np.random.default_rng(9).standard_normal((20, 3)).astype(np.float32)
    (logits,) = runtime(dg_onnx.export(mlp, tmp_path / "m.onnx", 3, opset=opset)).run(None, {"input": X})
    np.testing.assert_allclose(logits, mlp(dg.tensor(X)).numpy(), rtol=1e-5, atol=1e-6)


class _Doubling(dg.nn.Linear):
    def forward(self, x):
        return super().forward(x) * 2.0


@pytest.mark.parametrize("what", ["a Linear subclass", "a forward hook", "a forward set on a layer"])
def test_what_a_forward_runs_beyond_the_layers_kinds_is_refused(tmp_path, what):
    """Export writes the layers' kinds and weights: a forward it cannot see would make the served model
    compute something else than model(x)."""
    model = dg.nn.MLP([3, 4, 2], generator=0)
    if what == "a Linear subclass":
        model.net[2] = _Doubling(4, 2, generator=1)
    elif what == "a forward hook":
        model.net[1].register_forward_hook(lambda m, args, out: out * 0.5)
    else:
        model.net[0].forward = lambda x: x
    with pytest.raises(dg_onnx.ExportError, match="hook|forward of its own"):
        dg_onnx.export(model, tmp_path / "m.onnx", n_features=3)
    assert not (tmp_path / "m.onnx").exists()
