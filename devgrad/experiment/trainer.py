"""The Trainer: everything one run needs, built from a resolved spec, and the epoch loop."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from devgrad import nn, optim

try:  # optional: limiting BLAS threads (train.threads)
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None
from devgrad.backend import get_float32_matmul_precision, set_float32_matmul_precision
from devgrad.capture import CapturedStep
from devgrad.core import Tensor, no_grad
from devgrad.data import DataLoader, build_splits
from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment import model_info, neurons
from devgrad.experiment.build import build_model, build_optimizer, build_scheduler
from devgrad.experiment.console import Console, format_row, run_logger
from devgrad.experiment.errors import RunError
from devgrad.experiment.spec import Spec
from devgrad.experiment.task import Task


class Trainer:
    """Everything one run needs, built from a resolved spec; ``fit`` trains epoch by epoch."""

    def __init__(self, spec: Spec, run_dir: Path, device, quiet: bool, splits=None):
        self.spec = spec
        self.run_dir = run_dir
        self.quiet = quiet
        self.device = device
        self.dtype = np.dtype(spec.dtype)
        self.splits = splits if splits is not None else build_splits(spec.data.to_dict(), spec.seed, spec.task,
                                                                     spec.loss.name)
        self.task = Task.from_spec(spec, self.splits)
        self.log = run_logger(run_dir)
        self.log.info("task: %s (%s)", self.task.kind, self.splits.task_reason)
        for note in self.splits.notes:
            self.log.info("data: %s", note)
        for warning in self.splits.warnings:
            self.log.warning("data: %s", warning)
        self.model = build_model(spec, self.splits.n_features, self.task, device)
        # What prediction needs beside the weights (features, scalings, class values), before any checkpoint;
        # a resumed or redrawn run keeps the record its weights were trained with
        model_info.record(run_dir, model_info.describe(spec, self.splits, self.task))
        self._named_parameters = list(self.model.named_parameters())  # fixed for the run: walked once
        self.checkpoints: ckpt.Checkpointer | None = None  # made by fit()
        self.stopped_at: int | None = None  # the epoch early stopping ended the run at
        self.checkpoint_problems: list[str] = []  # a damaged checkpoint the run went on without
        self.stop_requested: StopFile | None = None  # asked after every epoch: stop as on Ctrl-C
        # Called after every epoch as callback(trainer, epoch, row) (a search's pruning, tracking);
        # one that returns "pruned" ends the run there, with that status.
        self.callbacks: list = []
        self.graph_reason = _graph_choice(spec, device)  # None: capture the step
        graphed = self.graph_reason is None
        self.log.info("train.capture %s: %s", spec.train.capture,
                      f"the training step is captured and replayed as {_CAPTURED_AS[device.supports_graphs]}"
                      if graphed else f"steps run eagerly ({self.graph_reason})")
        self.optimizer = build_optimizer(spec, self.model.parameters(), capturable=graphed)
        self.scheduler = build_scheduler(spec, self.optimizer)
        t = spec.train
        self.train_loader = DataLoader(self.splits.X_train, self.splits.y_train, t.batch_size, t.shuffle,
                                       device, self.dtype, seed=spec.seed)
        eval_batch = max(t.batch_size or 0, 4096)
        self.val_loader = (DataLoader(self.splits.X_val, self.splits.y_val, eval_batch, False, device, self.dtype)
                           if len(self.splits.X_val) else None)
        es = t.early_stopping
        monitor = es.monitor
        if self.val_loader is None and monitor.startswith("val_"):
            monitor = "train_" + monitor[len("val_"):]  # no validation split: watch the train metric
        measured = {"loss", *self.task.metrics}
        if monitor.split("_", 1)[1] not in measured:
            raise RunError(f"train.early_stopping.monitor is {es.monitor}, which this {self.task.kind} run does not "
                           f"measure; choose from {', '.join(f'val_{m}' for m in sorted(measured))} (or train_...)")
        self.monitor = monitor
        self.mode = es.mode if es.mode != "auto" else ("max" if monitor.endswith(("accuracy", "r2")) else "min")
        self.best_value: float | None = None
        self.best_epoch = 0
        self.wait = 0
        metrics = self.task.metrics
        self.metrics = ckpt.MetricsLog(run_dir, ("epoch", "lr", "train_loss", *(f"train_{m}" for m in metrics),
                                                 "val_loss", *(f"val_{m}" for m in metrics)))
        self.history: list[dict] = []
        # 2-D inputs and a narrow first layer: its weights after every epoch (hidden_units.jsonl),
        # the picture of all-zero initialisation keeping every unit identical.
        hidden = spec.model.hidden
        self.units = (neurons.UnitHistory(run_dir) if self.splits.n_features == 2 and hidden
                      and hidden[0] <= neurons.MAX_UNITS else None)
        self.frames = (neurons.BoundaryFrames(self.splits.all_points()[0], spec.train.epochs)
                       if spec.plots.enabled and spec.plots.animate and self.splits.n_features == 2
                       and not self.task.regression else None)
        # Per-epoch sums, accumulated on the device by every step (one sync per epoch). They are
        # allocated once: a captured step keeps adding into these very arrays.
        with device.activate():
            self._loss_sum = device.xp.zeros((), dtype=np.float64)
            self._correct = device.xp.zeros((), dtype=np.int64)
            self._sse = device.xp.zeros((), dtype=np.float64)  # regression: squared and absolute errors
            self._sae = device.xp.zeros((), dtype=np.float64)
        self._train_sst = _total_sum_of_squares(self.splits.y_train) if self.task.regression else None
        self.step = CapturedStep(self._step, device, optimizer=self.optimizer if graphed else None,
                                 enabled=graphed)

    # -- one epoch ---------------------------------------------------------------------------
    def _step(self, xb: Tensor, yb: Tensor) -> None:
        """One training step on a batch; adds its loss and hits to the epoch sums on the device.
        Everything here stays on the device, so ``self.step`` can capture it in a CUDA graph."""
        out = self.model(xb)
        loss = self.task.loss_value(out, self.task.targets(yb, self.dtype))
        self.optimizer.zero_grad()
        loss.backward()
        clip = self.spec.train.clip_grad_norm
        if clip:
            optim.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self._add_to_sums(out.data, yb.data, loss.data, self._loss_sum, self._correct, self._sse, self._sae)

    def _add_to_sums(self, out, y, loss, loss_sum, correct, sse, sae) -> None:
        """A batch's loss (its mean × its rows) and its hits (classification) or squared and
        absolute errors (regression), added in place to the device sums by the device's kernels:
        no host read, so a captured step can do it too."""
        rows = len(out)
        if self.task.regression:
            self.device.kernels.reg_sums(out, y, loss, rows, loss_sum, sse, sae)
        else:
            self.device.kernels.class_sums(out, y, loss, rows, self.task.threshold, loss_sum, correct)

    def _train_epoch(self, epoch: int) -> dict:
        self.model.train()
        self.train_loader.set_epoch(epoch)
        for i, m in enumerate(self.model.modules()):
            if isinstance(m, nn.Dropout):
                m.reseed(int(np.random.default_rng([self.spec.seed, 3, epoch, i]).integers(2**62)))
        for total in (self._loss_sum, self._correct, self._sse, self._sae):
            total.fill(0)
        for xb, yb in self.train_loader:
            self.step(xb, yb)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        n = self.train_loader.n
        row = {"epoch": epoch, "lr": float(lr), "train_loss": float(self._loss_sum) / n}
        row.update({f"train_{k}": v for k, v in self._metrics(n, self._correct, self._sse, self._sae,
                                                             self._train_sst).items()})
        return row

    def _metrics(self, n: int, correct, sse, sae, sst) -> dict:
        """The task's metrics from one split's device sums: accuracy; or mse and mae in the
        target's units (undoing its standardisation) and r2."""
        if not self.task.regression:
            return {"accuracy": int(correct) / n} if "accuracy" in self.task.metrics else {}
        sse, sae, scale = float(sse), float(sae), self.splits.y_std
        values = {"mse": sse / n * scale * scale, "mae": sae / n * scale,
                  "r2": 1.0 - sse / sst if sst > 0 else float("nan")}
        return {k: values[k] for k in self.task.metrics}

    @no_grad()
    def evaluate(self, loader) -> dict:
        """Mean loss and accuracy over a loader, with the model in eval mode."""
        with self.device.activate():
            return self._evaluate(loader)

    def _evaluate(self, loader) -> dict:
        xp = self.device.xp
        self.model.eval()
        loss_sum = xp.zeros((), dtype=np.float64)
        correct = xp.zeros((), dtype=np.int64)
        sse = xp.zeros((), dtype=np.float64)
        sae = xp.zeros((), dtype=np.float64)
        for xb, yb in loader:
            out = self.model(xb)
            loss = self.task.loss_value(out, self.task.targets(yb, self.dtype))
            self._add_to_sums(out.data, yb.data, loss.data, loss_sum, correct, sse, sae)
        sst = _total_sum_of_squares(self.device.to_host(loader.y.data)) if self.task.regression else None
        return {"loss": float(loss_sum) / loader.n, **self._metrics(loader.n, correct, sse, sae, sst)}

    def _improved(self, value: float) -> bool:
        if self.best_value is None:
            return True
        delta = self.spec.train.early_stopping.min_delta
        if self.mode == "min":
            return value < self.best_value - delta
        return value > self.best_value + delta

    # -- checkpoints ---------------------------------------------------------------------------
    def _extra_state(self) -> dict:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch, "wait": self.wait,
                "monitor": self.monitor, "rng": {"seed": self.spec.seed, "scheme": "per-epoch streams"},
                "standardize": {"mean": self.splits.mean, "std": self.splits.std}}

    def snapshot(self, epoch: int) -> dict:
        """The run's state after ``epoch``, copied on the run's device (``ckpt.to_host`` gives
        what a checkpoint file holds): cheap enough to take after every epoch."""
        return ckpt.snapshot(parameters=self._named_parameters, optimizer=self.optimizer, scheduler=self.scheduler,
                             epoch=epoch, extra=self._extra_state())

    def restore(self, state: dict) -> int:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        self.best_value = state.get("best_value")
        self.best_epoch = int(state.get("best_epoch") or 0)
        self.wait = int(state.get("wait") or 0)
        return int(state["epoch"])

    # -- the loop -----------------------------------------------------------------------------
    def fit(self, start_epoch: int, console: Console) -> str:
        """Train from ``start_epoch`` (1-based) to the end; returns the final status."""
        # Every array of the run lives on the run's device. Overflow and NaN are the run's to
        # report (a non-finite loss stops it as diverged, with advice), not NumPy warnings.
        previous = get_float32_matmul_precision()
        set_float32_matmul_precision(self.spec.train.matmul_precision)  # process-wide: put back after
        try:
            with self.device.activate(), np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                    self._blas_threads():
                return self._fit(start_epoch, console)
        finally:
            set_float32_matmul_precision(previous)

    # A small model's matrix products are too short to share among threads: extra BLAS threads
    # only spin, and several runs at once fight over the cores. Above this many weights in its
    # largest layer a model gets every thread.
    SMALL_LAYER = 512 * 512

    def _blas_threads(self):
        """The BLAS thread limit for this run (train.threads; threadpoolctl), as a context manager."""
        setting = self.spec.train.threads
        largest = max((p.size for p in self.model.parameters()), default=0)
        limit = setting if setting != "auto" else (1 if largest <= self.SMALL_LAYER else None)
        if limit is None:
            self.log.info("train.threads %s: every BLAS thread (largest layer %d weights)", setting, largest)
            return contextlib.nullcontext()
        if threadpool_limits is None:
            self.log.info("train.threads %s: threadpoolctl is not installed, so BLAS uses all its threads "
                          "(pip install threadpoolctl)", setting)
            return contextlib.nullcontext()
        self.log.info("train.threads %s: %d BLAS thread(s) (largest layer %d weights)", setting, limit, largest)
        return threadpool_limits(limits=limit, user_api="blas")

    def _fit(self, start_epoch: int, console: Console) -> str:
        t = self.spec.train
        policy = t.checkpoint
        self.checkpoints = ckpt.Checkpointer(self.run_dir / "checkpoints", seconds=policy.seconds,
                                             every=policy.every, save_best=policy.save_best)
        if start_epoch > 1:
            self.checkpoints.epoch_written["last.npz"] = start_epoch - 1  # the file this run resumed from
        try:
            return self._epochs(start_epoch, console)
        finally:
            # The end of the run, Ctrl-C, divergence or an error: what is newer than the files is
            # written now (from the last finished, finite epoch), by the writer thread while the
            # run evaluates the test split (it ends before the plots); the run's command waits for it
            # (checkpoints.close()) before it calls the run completed.
            self.checkpoints.flush(wait=False)
            self.metrics.close()  # the files appended to every epoch
            if self.units is not None:
                self.units.close()

    def _checkpointer(self) -> ckpt.Checkpointer:
        """The run's checkpointer, which ``fit`` makes before the first epoch."""
        if self.checkpoints is None:
            raise RuntimeError("the trainer's checkpoints are made by fit(): call fit() first")
        return self.checkpoints

    def _epochs(self, start_epoch: int, console: Console) -> str:
        t = self.spec.train
        es = t.early_stopping
        for epoch in range(start_epoch, t.epochs + 1):
            row = self._train_epoch(epoch)
            if self.val_loader is not None:
                val = self.evaluate(self.val_loader)
                row.update({f"val_{k}": v for k, v in val.items()})
            if not math.isfinite(row["train_loss"]):
                checkpoints = self._checkpointer()
                last = checkpoints.latest["epoch"] if checkpoints.latest else checkpoints.epoch_written["last.npz"]
                where = f"epoch {last}" if last else "none yet"
                console.say(f"the training loss became {row['train_loss']} at epoch {epoch}: the run diverged. "
                            f"The last good checkpoint ({where}) is kept. Try a lower optimizer.lr, "
                            "train.clip_grad_norm, or standardized inputs.")
                return "failed"
            self.metrics.append(row)
            self.history.append(row)
            if self.units is not None:
                self.units.append(epoch, *neurons.first_layer(self.model))
            if self.frames is not None:
                self.frames.capture(epoch, self.predict_proba, force=epoch == t.epochs)
            value = row.get(self.monitor)
            improved = value is not None and self._improved(value)
            if improved:
                self.best_value, self.best_epoch, self.wait = value, epoch, 0
            else:
                self.wait += 1
            console.epoch(row, format_row(row, t.epochs), best=(self.monitor, self.best_value, self.best_epoch))
            self._checkpointer().epoch_done(self.snapshot(epoch), improved)
            if self.stop_requested is not None and self.stop_requested():
                raise KeyboardInterrupt(f"stop asked for by {self.stop_requested.path}")  # handled as Ctrl-C
            if "pruned" in [callback(self, epoch, row) for callback in self.callbacks]:
                self.stopped_at = epoch
                console.say(f"pruned at epoch {epoch} by the search's pruner ({self.monitor} {value})")
                return "pruned"
            if es.enabled and self.wait >= es.patience:
                self.stopped_at = epoch
                if self.frames is not None:
                    self.frames.capture(epoch, self.predict_proba, force=True)
                console.say(f"early stopping at epoch {epoch}: {self.monitor} has not improved for "
                            f"{es.patience} epochs (best {self.best_value:.4g} at epoch {self.best_epoch})")
                break
        if es.restore_best and not es.enabled:
            self.log.info("train.early_stopping.restore_best is ignored: early stopping is off (enabled: false), "
                          "so the run ends with its last epoch's weights")
        elif es.restore_best:
            self._restore_best(console)
        return "completed"

    def _restore_best(self, console: Console) -> None:
        """The best epoch's weights into the model: the snapshot in memory, else (its best epoch came
        before a resume) best.npz. A damaged best.npz is reported and the run keeps its last weights."""
        best = self._checkpointer().best
        file = self.run_dir / "checkpoints" / "best.npz"
        if best is None and file.exists():
            try:
                best = ckpt.load_checkpoint(file)
            except ckpt.DamagedCheckpointError as exc:
                problem = (f"{exc}; the best epoch's weights ({self.best_epoch}) cannot be restored, so the run "
                           f"ends with its last epoch's weights, as in checkpoints/last.npz")
                self.checkpoint_problems.append(problem)
                console.say(problem)
                return
        if best is not None:
            self.model.load_state_dict(best["model"])
            console.say(f"restored the weights of the best epoch ({self.best_epoch})")

    def predict_values(self, X_raw: np.ndarray) -> np.ndarray:
        """Regression predictions for raw (unstandardised) inputs, in the target's units, on the host."""
        X = self.splits.standardize_input(X_raw).astype(self.dtype)
        with no_grad(), self.device.activate():
            self.model.eval()
            out = self.model(Tensor._make(self.device.put(X), self.device))
        return self.splits.target_values(self.device.to_host(out.data).reshape(-1))

    def predict_proba(self, X_raw: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes) for raw (unstandardised) inputs, on the host. The
        outputs come to the host first and their softmax (or sigmoid) is NumPy's: the same bytes
        travel, and on a GPU no CuPy kernel runs (each would be one more compilation on a fresh
        machine, for a plot)."""
        X = self.splits.standardize_input(X_raw).astype(self.dtype)
        with no_grad(), self.device.activate():
            self.model.eval()
            out = self.model(Tensor._make(self.device.put(X), self.device))
        return self.task.probabilities(self.device.to_host(out.data), np)


class StopFile:
    """A file whose appearance asks a run to stop after its current epoch, as Ctrl-C would: how a
    sweep's Ctrl-C reaches runs on Dask workers, which no signal reaches. Looked for at most
    every ``every`` seconds, so a run of short epochs does not pay a file-system call for each."""

    def __init__(self, path, every: float = 0.25):
        self.path = Path(path)
        self.every = every
        self._looked = -math.inf

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._looked < self.every:
            return False
        self._looked = now
        return self.path.exists()


def summary_of(trainer: Trainer, history: list, status: str, wall: float, earlier: Sequence[dict] = ()) -> dict:
    """summary.json of a run: ``wall`` is this segment's time (a resume starts a new segment), and
    ``earlier`` the segments before it (meta.json's), so wall_seconds is the run's total."""
    epochs_run = len(history)
    best = next((r for r in history if r["epoch"] == trainer.best_epoch), None)
    samples = trainer.train_loader.n * max(epochs_run, 0)
    total = wall + sum(segment["wall_seconds"] for segment in earlier)
    summary = {"status": status, "name": trainer.spec.name, "epochs_run": epochs_run,
               "final": history[-1] if history else None, "best": best, "monitor": trainer.monitor,
               "best_epoch": trainer.best_epoch or None, "wall_seconds": round(total, 3),
               "wall_seconds_this_segment": round(wall, 3), "segments": len(earlier) + 1,
               "train_samples_per_second": round(samples / total, 1) if total > 0 else None,
               "device": trainer.device.name, "n_parameters": trainer.model.num_parameters(),
               "task": trainer.task.kind, "task_reason": trainer.splits.task_reason}
    if trainer.checkpoint_problems:
        summary["checkpoint_problems"] = list(trainer.checkpoint_problems)
    step = trainer.step  # what train.capture did: steps recorded, steps replayed, or why not
    gpu = trainer.device.supports_graphs
    summary["capture"] = {"setting": trainer.spec.train.capture, "active": step.replays > 0,
                          "as": _CAPTURED_AS[gpu], "recorded": step.graphs, "replays": step.replays,
                          "eager_fallbacks": step.diverged, "why_not": trainer.graph_reason or step.failure}
    # the CUDA graph's own entry, as GPU checks read it
    summary["cuda_graph"] = {"setting": trainer.spec.train.capture, "active": gpu and step.graphs > 0,
                             "graphs": step.graphs if gpu else 0, "replays": step.replays if gpu else 0,
                             "why_not": (trainer.graph_reason or step.failure) if gpu else
                             f"{trainer.device} has no CUDA graphs (its steps were captured as NumPy plans)"}
    return summary


_CAPTURED_AS = {True: "CUDA graphs", False: "plans of NumPy calls"}


def _total_sum_of_squares(y: np.ndarray) -> float:
    """Σ (y − mean)² of one split's targets: r2's denominator."""
    y = np.asarray(y, dtype=np.float64)
    return float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0


def _graph_choice(spec: Spec, device) -> str | None:
    """Whether the run captures its step (a CUDA graph; a NumPy plan on the CPU): None for yes,
    else why not."""
    setting = spec.train.capture
    if setting is False:
        return "train.capture is false"
    if not (device.supports_graphs or device.is_host):
        return f"{device} cannot capture a step"
    if spec.model.dropout > 0:  # with true, the spec already refused this
        return "model.dropout > 0: a replayed step would reuse one dropout mask"
    return None
