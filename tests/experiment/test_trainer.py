"""devgrad.experiment.trainer: what a run sets up around its epochs."""

from __future__ import annotations

import pytest

import devgrad as dg
from devgrad.experiment import run
from devgrad.experiment import report
from devgrad.experiment import trainer as trainer_module
from devgrad.experiment.callbacks import Callback
from tests.support.run_helpers import SMALL, SMALL_NO_PLOTS


@pytest.mark.slow
def test_matmul_precision_applies_during_the_run_and_is_put_back(tmp_path, monkeypatch):
    seen = []
    real = trainer_module.set_float32_matmul_precision

    def recording(value):
        seen.append(value)
        real(value)

    monkeypatch.setattr(trainer_module, "set_float32_matmul_precision", recording)
    result = run({**SMALL_NO_PLOTS, "train": {**SMALL["train"], "epochs": 1, "matmul_precision": "high"}}, out=tmp_path,
                 quiet=True)
    assert result.status == "completed"
    assert seen == ["high", "highest"] and dg.get_float32_matmul_precision() == "highest"


def test_numeric_overflow_in_a_run_is_reported_as_divergence_not_as_numpy_warnings(tmp_path, recwarn):
    spec = {**SMALL_NO_PLOTS, "loss": "mse", "optimizer": {"name": "sgd", "lr": 1e8},
            "model": {"hidden": [16], "activation": "relu"}, "train": {"epochs": 3, "batch_size": 8}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "failed"
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.slow
def test_small_models_train_with_one_blas_thread(tmp_path, monkeypatch):
    """Several small runs at once on a few cores fight over BLAS threads (each run several times
    slower); train.threads: auto gives a small model one thread, a large one all of them."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []
    real_fit = trainer_module.Trainer._fit

    def recording(self, start_epoch):
        seen.append(max((p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"),
                        default=None))
        return real_fit(self, start_epoch)

    monkeypatch.setattr(trainer_module.Trainer, "_fit", recording)
    small = run({**SMALL_NO_PLOTS, "train": {**SMALL["train"], "epochs": 1}}, out=tmp_path, quiet=True)
    assert "train.threads auto: 1 BLAS thread(s)" in (small.run_dir / "train.log").read_text()
    large = run({**SMALL_NO_PLOTS, "model": {"hidden": [600]}, "data": {"source": "classification", "n_samples": 200,
                                                               "n_features": 600},
                 "train": {**SMALL["train"], "epochs": 1, "threads": "auto"}}, out=tmp_path, quiet=True)
    assert "every BLAS thread" in (large.run_dir / "train.log").read_text()
    if seen[0] is not None:
        assert seen[0] == 1
    with pytest.raises(dg.experiment.SpecError, match="must be auto or a positive whole number"):
        run({**SMALL_NO_PLOTS, "train": {"threads": 0}}, out=tmp_path, quiet=True)


@pytest.mark.slow
def test_a_small_models_test_split_and_plot_planes_use_one_blas_thread(tmp_path, monkeypatch):
    """After its training a run evaluates its test split and the planes of its plots: a small
    model keeps its one BLAS thread there too (threads spinning after those products would take
    the cores the figures are drawn on)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    def blas_threads() -> int | None:
        return max((p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"), default=None)

    seen = {}
    real_evaluate = trainer_module.Trainer.evaluate

    def evaluating(self, loader):
        seen.setdefault("evaluate", []).append(blas_threads())
        return real_evaluate(self, loader)

    def drawing(*args, **kwargs):
        seen["plots"] = blas_threads()
        return []

    monkeypatch.setattr(trainer_module.Trainer, "evaluate", evaluating)
    monkeypatch.setattr(report, "draw", drawing)
    before = blas_threads()
    run({**SMALL, "train": {**SMALL["train"], "epochs": 1}}, out=tmp_path, quiet=True)
    if before is None or before < 2:
        pytest.skip("one BLAS thread here whatever the limit")
    assert seen["plots"] == 1 and set(seen["evaluate"]) == {1}, seen
    assert blas_threads() == before  # put back once the run has ended


@pytest.mark.slow
def test_restore_best_applies_only_when_early_stopping_is_on(tmp_path):
    def restored(enabled: bool) -> bool:
        es = {"enabled": enabled, "patience": 100, "restore_best": True}
        spec = {**SMALL_NO_PLOTS, "train": {**SMALL["train"], "epochs": 3, "early_stopping": es}}
        result = run(spec, out=tmp_path / str(enabled), quiet=True)
        assert result.status == "completed"
        return "restored the weights of the best epoch" in (result.run_dir / "train.log").read_text()

    assert restored(True)
    assert not restored(False)


def test_a_stop_file_stops_a_run_after_its_epoch_as_ctrl_c_would(tmp_path):
    import json

    from devgrad.experiment import resume

    stop = tmp_path / "stop"
    stop.touch()
    with pytest.raises(KeyboardInterrupt, match="continue with: devgrad resume"):
        run({**SMALL_NO_PLOTS, "train": {**SMALL["train"], "epochs": 4}}, out=tmp_path / "runs", quiet=True,
            stop_file=stop)
    (run_dir,) = (tmp_path / "runs" / "small").iterdir()
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "stopped"
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1  # it stopped after its first epoch
    stop.unlink()
    finished = resume(run_dir, quiet=True, stop_file=stop)
    assert finished.status == "completed" and [r["epoch"] for r in finished.history] == [1, 2, 3, 4]


@pytest.mark.parametrize(("source", "loss"), [
    ("triangle", "bce"), ("triangle", "logistic"), ("triangle", "hinge"), ("triangle", "mse"),
    ("triangle", "mae"), ("triangle", "huber"), ("triangle", "cross_entropy"),
    ("spirals", "cross_entropy"), ("spirals", "mse")])
def test_the_cpu_step_of_every_loss_is_captured_and_replays_the_eager_run(tmp_path, recwarn, source, loss):
    # The loss's targets (labels, ±1 signs, one-hot rows) are made inside the step: a captured
    # step must replay them from each new batch, not keep the first batch's.
    spec = {**SMALL, "data": {"source": source, "n_samples": 240}, "loss": loss,
            "train": {"epochs": 2, "batch_size": 32}, "plots": {"enabled": False}}
    if loss in ("mae", "huber"):  # regression losses: the 0/1 labels fitted as values
        spec["task"] = "regression"
    runs = [run({**spec, "train": {**spec["train"], "capture": c}}, out=tmp_path / str(c), quiet=True)
            for c in ("auto", False)]
    captured, eager = (r.summary["capture"] for r in runs)
    assert captured["active"] and "failure" not in str(captured), captured
    assert not eager["active"]
    assert [row["train_loss"] for row in runs[0].history] == [row["train_loss"] for row in runs[1].history]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_a_step_that_stopped_replaying_is_not_reported_as_captured():
    """summary.json's capture.active: replayed and still replaying at the end of the run."""
    from types import SimpleNamespace

    from devgrad.experiment.results import _capture_summary

    def report(replays: int, failure):
        step = SimpleNamespace(replays=replays, failure=failure, graphs=1, diverged=0)
        trainer = SimpleNamespace(step=step, spec=SimpleNamespace(train=SimpleNamespace(capture="auto")),
                                  device=dg.device("cpu"), plan=SimpleNamespace(graph_reason=None))
        return _capture_summary(trainer)["capture"]
    assert report(12, None)["active"]
    stopped = report(12, "RuntimeError: the replayed step differs from the eager step")
    assert not stopped["active"] and stopped["replays"] == 12 and stopped["why_not"].startswith("RuntimeError")
    assert not report(0, None)["active"]


def test_dropout_is_on_in_every_training_step_and_off_in_every_evaluation(tmp_path):
    """The trainer switches its model's modules (walked once) to training for each epoch's steps and
    to evaluation for its validation, every epoch."""
    seen: list = []

    class Watch(Callback):
        def on_train_begin(self, trainer, start_epoch):
            for m in trainer.model.modules():
                if isinstance(m, dg.nn.Dropout):
                    m.register_forward_pre_hook(lambda module, args: seen.append((len(args[0]), module.training)))

        def on_epoch_end(self, trainer, epoch, row):
            seen.append(("epoch", epoch))

    spec = {**SMALL_NO_PLOTS, "model": {"hidden": [6], "dropout": 0.5}, "train": {"epochs": 2, "batch_size": 100}}
    result = run(spec, out=tmp_path, quiet=True, callbacks=[Watch()])
    assert result.status == "completed"
    one_epoch = [(100, True), (100, True), (80, True), (60, False)]  # 280 training rows, then 60 validation rows
    assert seen == [*one_epoch, ("epoch", 1), *one_epoch, ("epoch", 2), (60, False)]  # and the test split


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_replayed_evaluations_give_the_eager_evaluations_numbers(tmp_path, task, monkeypatch):
    """On the CPU the validation batches are replayed as a plan too: every epoch's validation
    metrics and the test split's are those of eager evaluation, bit for bit. An evaluation whose
    plan would keep more than EVAL_PLAN_BYTES of layer outputs runs eagerly."""
    trainers = []

    class Keep(Callback):
        def on_train_end(self, trainer, status):
            trainers.append(trainer)

    spec = {**SMALL_NO_PLOTS, "train": {"epochs": 4, "batch_size": 64}}
    if task == "regression":
        spec = {**spec, "task": "regression", "loss": "mse"}
    runs = [run({**spec, "train": {**spec["train"], "capture": c}}, out=tmp_path / str(c), quiet=True,
                callbacks=[Keep()]) for c in ("auto", False)]
    assert trainers[0].eval_step.replays >= 2 and trainers[1].eval_step.replays == 0
    assert runs[0].history == runs[1].history
    assert runs[0].summary["test"] == runs[1].summary["test"]
    if task == "classification":
        # one byte less than this run's evaluation keeps: 60 rows × 7 layer outputs, float32, twice
        monkeypatch.setattr(trainer_module.Trainer, "EVAL_PLAN_BYTES", 2 * 60 * 7 * 4 - 1)
        large = run(spec, out=tmp_path / "large", quiet=True, callbacks=[Keep()])
        assert not trainers[2].eval_step.enabled and trainers[2].step.replays > 0
        assert large.history == runs[0].history
