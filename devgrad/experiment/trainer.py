"""The Trainer: a run's epoch loop, over what its ``Plan`` built; everything around the loop
(metrics files, checkpoints, progress, early stopping, ...) is a callback (``callbacks.py``)."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from devgrad import nn, optim

try:  # optional: limiting BLAS threads (train.threads)
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None
from devgrad.backend import Device, get_float32_matmul_precision, set_float32_matmul_precision
from devgrad.capture import CapturedStep
from devgrad.core import Tensor, no_grad
from devgrad.data import DataLoader, Splits
from devgrad.experiment import _kernels  # noqa: F401 - registers the epoch's sums kernels used below
from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.console import Console
from devgrad.experiment.plan import Plan


class Trainer:
    """The epoch loop of one run: trains the plan's model with its optimizer and schedule, keeps
    the best value of the monitored metric, and calls its callbacks (see ``callbacks.Callback``)."""

    def __init__(self, plan: Plan, run_dir: Path, log: logging.Logger, callbacks: Sequence = ()):
        splits, model, optimizer, device = plan.splits, plan.model, plan.optimizer, plan.device
        assert isinstance(splits, Splits) and model is not None and optimizer is not None and device is not None, \
            "a check-only plan trains nothing"
        self.plan, self.spec, self.run_dir, self.log = plan, plan.spec, run_dir, log
        self.device: Device = device
        self.splits: Splits = splits
        self.task, self.dtype = plan.task, plan.dtype
        self.model: nn.MLP = model
        self.optimizer: optim.Optimizer = optimizer
        self.scheduler = plan.scheduler
        self.monitor, self.mode = plan.monitor, plan.mode
        self.callbacks = list(callbacks)
        # parameters and buffers (a BatchNorm's running statistics): what a checkpoint holds; walked once
        self._named_parameters = list(self.model.state_dict().items())
        # Its modules, walked once too: every epoch switches them to training and back to evaluation
        # (a walk of the tree each time costs as much as a small model's step) and reseeds dropout.
        self._modules = tuple(self.model.modules())
        self._dropouts = tuple((i, m) for i, m in enumerate(self._modules) if isinstance(m, nn.Dropout))
        t = self.spec.train
        # reuse_arrays: a captured step's plan reads every batch from the same arrays (no re-pointing);
        # an eager step gains nothing from the copy
        self.train_loader = DataLoader(self.splits.X_train, self.splits.y_train, t.batch_size, t.shuffle,
                                       self.device, self.dtype, seed=plan.seed, reuse_arrays=plan.captured)
        eval_batch = max(t.batch_size or 0, 4096)
        self.val_loader = (DataLoader(self.splits.X_val, self.splits.y_val, eval_batch, False, self.device,
                                      self.dtype) if len(self.splits.X_val) else None)
        self.best_value: float | None = None
        self.best_epoch = 0
        self.wait = 0  # epochs since the monitored metric last improved
        self.improved = False  # whether it improved in the epoch that just ended
        self.history: list[dict] = []
        self.console: Console | None = None  # where callbacks' messages go while fit() runs
        self.checkpoints: ckpt.Checkpointer | None = None  # made by the Checkpoints callback
        self.checkpoint_problems: list[str] = []  # a damaged checkpoint the run went on without
        self.stop_status: str | None = None  # set by a callback that ends the run (request_stop)
        self.stopped_at: int | None = None  # the epoch it ended at
        self.epoch = 0
        # Per-epoch sums, accumulated on the device by every step (one sync per epoch). They are
        # allocated once: a captured step keeps adding into these very arrays.
        with self.device.activate():
            xp = self.device.xp
            self._loss_sum, self._correct = xp.zeros((), dtype=np.float64), xp.zeros((), dtype=np.int64)
            self._sse, self._sae = xp.zeros((), dtype=np.float64), xp.zeros((), dtype=np.float64)
        self._train_sst = _total_sum_of_squares(self.splits.y_train) if self.task.regression else None
        self._val_sst = (_total_sum_of_squares(self.splits.y_val) if self.task.regression and self.val_loader
                         else None)
        self.step = CapturedStep(self._step, self.device, optimizer=self.optimizer if plan.captured else None,
                                 enabled=plan.captured, on_failure=self._capture_failed)
        with self.device.activate():  # the evaluation's sums, kept for the run as the training step's are
            self._eval_sums = tuple(self.device.xp.zeros((), dtype=total.dtype) for total in
                                    (self._loss_sum, self._correct, self._sse, self._sae))
        self.eval_step = CapturedStep(self._eval_batch, self.device,
                                      optimizer=self.optimizer if plan.captured else None,
                                      enabled=plan.captured and self._eval_replayable(eval_batch),
                                      on_failure=self._eval_capture_failed)

    # What a replayed evaluation's plan may keep for the run (its batch's activations), beside the
    # training step's: the memory estimate (memory.py) counts one evaluation's activations, not kept.
    EVAL_PLAN_BYTES = 16 * 2**20

    def _eval_replayable(self, eval_batch: int) -> bool:
        """Whether evaluation batches are replayed as plans too: on the CPU, for a model without buffers
        (its arrays all belong to the optimizer, which tells a replay when one is replaced) whose
        evaluation batch's layer outputs are small."""
        rows = min(eval_batch, max(len(self.splits.X_val), len(self.splits.X_test)))
        outputs = sum(p.shape[0] for p in self.model.parameters() if p.ndim == 2)  # weights are (out, in)
        itemsize = np.dtype(self.dtype).itemsize
        return (self.device.is_host and len(self._named_parameters) == len(self.model.parameters())
                and 2 * rows * outputs * itemsize <= self.EVAL_PLAN_BYTES)

    def _capture_failed(self, message: str) -> None:
        """A step that could not be captured runs eagerly: the console and train.log say why
        (summary.json's ``capture`` records it too)."""
        self.say(f"train.capture {self.spec.train.capture}: {message}")

    def _eval_capture_failed(self, message: str) -> None:
        """Evaluation batches that cannot be replayed run eagerly: train.log says why."""
        self.log.info(f"evaluation: {message}")

    def say(self, message: str) -> None:
        """A message for the console and train.log (train.log alone outside ``fit``)."""
        if self.console is not None:
            self.console.say(message)
        else:
            self.log.info(message)

    def request_stop(self, status: str, message: str) -> None:
        """End the run after this epoch with ``status`` ("completed", "pruned"), saying why."""
        self.stop_status, self.stopped_at = status, self.epoch
        self.say(message)

    def checkpointer(self) -> ckpt.Checkpointer:
        """The run's checkpointer, which the Checkpoints callback makes before the first epoch."""
        if self.checkpoints is None:
            raise RuntimeError("the trainer's checkpoints are made by its Checkpoints callback when fit() begins")
        return self.checkpoints

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

    def _set_training(self, mode: bool) -> None:
        """``model.train(mode)`` over the modules walked once."""
        for m in self._modules:
            m.training = mode

    def _train_epoch(self, epoch: int) -> dict:
        self._set_training(True)
        self.train_loader.set_epoch(epoch)
        for i, m in self._dropouts:  # i: the module's place in model.modules(), as a resumed run counts it
            m.reseed(int(np.random.default_rng([self.spec.seed, 3, epoch, i]).integers(2**62)))
        for total in (self._loss_sum, self._correct, self._sse, self._sae):
            total.fill(0)
        for xb, yb in self.train_loader:
            self.step(xb, yb)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None and not isinstance(self.scheduler, optim.ReduceLROnPlateau):
            self.scheduler.step()  # plateau steps in _epochs, on the monitored value
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
        self._set_training(False)
        for total in self._eval_sums:
            total.fill(0)
        for xb, yb in loader:
            self.eval_step(xb, yb)
        loss_sum, correct, sse, sae = self._eval_sums
        sst = None
        if self.task.regression:
            sst = (self._val_sst if loader is self.val_loader else
                   _total_sum_of_squares(self.device.to_host(loader.y.data)))
        return {"loss": float(loss_sum) / loader.n, **self._metrics(loader.n, correct, sse, sae, sst)}

    def _eval_batch(self, xb: Tensor, yb: Tensor) -> None:
        """One evaluation batch's loss and hits, added to the evaluation sums on the device."""
        out = self.model(xb)
        loss = self.task.loss_value(out, self.task.targets(yb, self.dtype))
        self._add_to_sums(out.data, yb.data, loss.data, *self._eval_sums)

    def _improved(self, value: float) -> bool:
        if value != value:  # noqa: PLR0124 - NaN (unequal to itself) is never an improvement
            return False
        if self.best_value is None:
            return True
        delta = self.spec.train.early_stopping.min_delta
        if self.mode == "min":
            return value < self.best_value - delta
        return value > self.best_value + delta

    def _track_best(self, epoch: int, row: dict) -> None:
        value = row.get(self.monitor)
        self.improved = value is not None and self._improved(value)
        if self.improved:
            self.best_value, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1

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
        """The state of a checkpoint into the model, optimizer, schedule and monitor; its epoch."""
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
        """Train from ``start_epoch`` (1-based) to the end; returns the final status. ``console``
        shows the callbacks' messages (a ``console.Console``)."""
        # Every array of the run lives on the run's device. Overflow and NaN are the run's to
        # report (a non-finite loss stops it as diverged, with advice), not NumPy warnings.
        self.console = console
        previous = get_float32_matmul_precision()
        set_float32_matmul_precision(self.spec.train.matmul_precision)  # process-wide: put back after
        try:
            with self.device.activate(), np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                    self.blas_threads():
                return self._fit(start_epoch)
        finally:
            set_float32_matmul_precision(previous)

    # A small model's matrix products are too short to share among threads: extra BLAS threads
    # only spin, and several runs at once fight over the cores. Above this many weights in its
    # largest layer a model gets every thread.
    SMALL_LAYER = 512 * 512

    def blas_threads(self):
        """The BLAS thread limit for this run (train.threads; threadpoolctl), as a context manager:
        for its training, its test split and the planes its plots evaluate the model over (threads
        left spinning there would take the cores its figures are drawn on)."""
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

    def _fit(self, start_epoch: int) -> str:
        status = None
        for callback in self.callbacks:
            callback.on_train_begin(self, start_epoch)
        try:
            status = self._epochs(start_epoch)
            return status
        finally:
            for callback in reversed(self.callbacks):
                callback.on_train_end(self, status)

    def _epochs(self, start_epoch: int) -> str:
        for epoch in range(start_epoch, self.spec.train.epochs + 1):
            self.epoch = epoch
            row = self._train_epoch(epoch)
            if self.val_loader is not None:
                row.update({f"val_{k}": v for k, v in self.evaluate(self.val_loader).items()})
            problem = self._non_finite(row)
            if problem is not None:
                self._diverged(epoch, problem)
                return "failed"
            self.history.append(row)
            if isinstance(self.scheduler, optim.ReduceLROnPlateau) and row.get(self.monitor) is not None:
                self.scheduler.step(row[self.monitor])  # once the epoch's monitored value is known
            self._track_best(epoch, row)
            for callback in self.callbacks:
                callback.on_epoch_end(self, epoch, row)
            if self.stop_status is not None:
                return self.stop_status
        return "completed"

    def _non_finite(self, row: dict) -> str | None:
        """What went to inf or NaN in this epoch, if anything: the training loss, the validation loss
        (a finite training loss is summed before the epoch's last updates), or the weights
        themselves. Such an epoch is never kept as a checkpoint, nor counted as the best."""
        for key, what in (("train_loss", "training loss"), ("val_loss", "validation loss")):
            if key in row and not math.isfinite(row[key]):
                return f"the {what} became {row[key]}"
        # A weight's sum is inf or NaN when one of its values is (or, for a float32 weight whose values
        # are around 1e33, when the sum overflows: weights that large have diverged as well). The
        # device's own reduction, one number to the host per weight and epoch.
        total = self.device.kernels.sum_axes
        for name, p in self._named_parameters:
            if p.data.dtype.kind == "f" and not math.isfinite(float(total(p.data.reshape(-1), (0,)))):
                return f"the weights became inf or NaN ({name})"
        return None

    def _diverged(self, epoch: int, problem: str) -> None:
        checkpoints = self.checkpoints
        last = None
        if checkpoints is not None:
            last = checkpoints.latest["epoch"] if checkpoints.latest else checkpoints.epoch_written["last.npz"]
        where = f"epoch {last}" if last else "none yet"
        self.say(f"{problem} at epoch {epoch}: the run diverged. The last good checkpoint "
                 f"({where}) is kept. Try a lower optimizer.lr, train.clip_grad_norm, or standardized inputs.")

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


def _total_sum_of_squares(y: np.ndarray) -> float:
    """Σ (y − mean)² of one split's targets: r2's denominator."""
    y = np.asarray(y, dtype=np.float64)
    return float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
