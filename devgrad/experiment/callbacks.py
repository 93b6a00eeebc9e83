"""What a run does around its epoch loop, as callbacks (as Keras callbacks, or Chainer's trainer
extensions): the metrics files, the first layer's history, the boundary animation, the progress
line, checkpoints, a stop file, early stopping.

A callback overrides any of the hooks of ``Callback``; the trainer calls them in the order of
its list (``on_train_end`` in reverse, so what began last ends first). A callback ends the run
after an epoch with ``trainer.request_stop``. A plain function ``f(trainer, epoch, row)`` that
returns "pruned" to end the run (a search's pruning reporter, MLflow tracking) is a callback
too, through ``EpochFunction``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment import neurons
from devgrad.experiment.console import format_row

if TYPE_CHECKING:  # the trainer calls these; they only read it
    from devgrad.experiment.trainer import Trainer

__all__ = ["BoundaryAnimation", "Callback", "Checkpoints", "EarlyStopping", "EpochFunction", "MetricsFile",
           "NeuronHistory", "Progress", "StopFile", "as_callback"]


class Callback:
    """The hooks of a run; each does nothing unless overridden."""

    def on_train_begin(self, trainer: Trainer, start_epoch: int) -> None:
        """Before the first epoch of this segment (``start_epoch`` > 1 for a resumed run)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None:
        """After an epoch: ``row`` is its metrics (metrics.jsonl's line); ``trainer.improved`` says
        whether the monitored metric improved."""

    def on_train_end(self, trainer: Trainer, status: str | None) -> None:
        """After the loop: ``status`` is "completed", "pruned" or "failed" (diverged), or None when
        an exception (Ctrl-C, an error) ended it."""

    def on_run_end(self, trainer: Trainer, summary: dict) -> None:
        """After a completed or pruned run's loop, before summary.json is written: add to it."""


class EpochFunction(Callback):
    """A plain function ``f(trainer, epoch, row)`` called after every epoch; "pruned" ends the run
    with that status."""

    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None:
        if self.function(trainer, epoch, row) == "pruned" and trainer.stop_status is None:
            value = row.get(trainer.monitor)
            trainer.request_stop("pruned", f"pruned at epoch {epoch} by the search's pruner ({trainer.monitor} "
                                           f"{value})")


def as_callback(item) -> Callback:
    """``item`` as a Callback (a plain function through ``EpochFunction``)."""
    return item if isinstance(item, Callback) else EpochFunction(item)


class MetricsFile(Callback):
    """metrics.jsonl and metrics.csv, a line per epoch, appended as it ends."""

    def __init__(self, run_dir: Path, metrics: tuple):
        self.log = ckpt.MetricsLog(run_dir, ("epoch", "lr", "train_loss", *(f"train_{m}" for m in metrics),
                                             "val_loss", *(f"val_{m}" for m in metrics)))

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None:
        self.log.append(row)

    def on_train_end(self, trainer: Trainer, status: str | None) -> None:
        self.log.close()


class NeuronHistory(Callback):
    """hidden_units.jsonl: a narrow first layer's weights after every epoch, for 2-D inputs (the
    picture of all-zero initialisation keeping every unit identical)."""

    def __init__(self, run_dir: Path):
        self.units = neurons.UnitHistory(run_dir)

    @staticmethod
    def wanted(n_features: int, hidden: list) -> bool:
        """Whether a run records it: 2-D inputs and a first layer of at most ``MAX_UNITS`` units."""
        return n_features == 2 and bool(hidden) and hidden[0] <= neurons.MAX_UNITS

    def on_train_begin(self, trainer: Trainer, start_epoch: int) -> None:
        self._layer = neurons.first_linear(trainer.model)  # found once: the run's model keeps its layers

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None:
        self.units.append(epoch, *neurons.host_layer(self._layer))

    def on_train_end(self, trainer: Trainer, status: str | None) -> None:
        self.units.close()


class BoundaryAnimation(Callback):
    """plots/training.gif's frames (``plots.animate``): the decision boundary after every few
    epochs, and at the last one, early stopping's included."""

    def __init__(self, X_all, epochs: int):
        self.frames = neurons.BoundaryFrames(X_all, epochs)
        self.epochs = epochs

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None:
        last = epoch == self.epochs or trainer.stop_status == "completed"
        self.frames.capture(epoch, trainer.predict_proba, force=last)


class Progress(Callback):
    """The console's line (or bar) for every epoch, with the best monitored value so far."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None:
        if trainer.console is not None:  # fit() gives it one
            trainer.console.epoch(row, format_row(row, trainer.spec.train.epochs),
                                  best=(trainer.monitor, trainer.best_value, trainer.best_epoch))


class Checkpoints(Callback):
    """checkpoints/last.npz and best.npz (``train.checkpoint``), written by a thread in the
    background; whatever is newer than the files is written when the loop ends, however it ends."""

    def on_train_begin(self, trainer: Trainer, start_epoch: int) -> None:
        policy = trainer.spec.train.checkpoint
        trainer.checkpoints = ckpt.Checkpointer(trainer.run_dir / "checkpoints", seconds=policy.seconds,
                                                every=policy.every, save_best=policy.save_best)
        if start_epoch > 1:
            trainer.checkpoints.epoch_written["last.npz"] = start_epoch - 1  # the file this run resumed from

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None:
        trainer.checkpointer().epoch_done(trainer.snapshot(epoch), trainer.improved)

    def on_train_end(self, trainer: Trainer, status: str | None) -> None:
        # The end of the run, Ctrl-C, divergence or an error: written from the last finished, finite
        # epoch by the writer thread while the run evaluates the test split; the run's command waits
        # for it (checkpoints.close()) before it calls the run completed.
        if trainer.checkpoints is not None:
            trainer.checkpoints.flush(wait=False)


class StopFile(Callback):
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

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None:
        if self():
            raise KeyboardInterrupt(f"stop asked for by {self.path}")  # handled as Ctrl-C


class EarlyStopping(Callback):
    """``train.early_stopping``: end the run when the monitored metric has not improved for
    ``patience`` epochs; with ``restore_best``, end it with the best epoch's weights."""

    def __init__(self, settings):
        self.settings = settings

    def on_epoch_end(self, trainer: Trainer, epoch: int, row: dict) -> None:
        es = self.settings
        if es.enabled and trainer.wait >= es.patience and trainer.stop_status is None:
            best = (f"best {trainer.best_value:.4g} at epoch {trainer.best_epoch}" if trainer.best_value is not None
                    else "no epoch measured it")
            trainer.request_stop("completed", f"early stopping at epoch {epoch}: {trainer.monitor} has not improved "
                                              f"for {es.patience} epochs ({best})")

    def on_train_end(self, trainer: Trainer, status: str | None) -> None:
        if status != "completed" or not self.settings.restore_best:
            return
        if not self.settings.enabled:
            trainer.log.info("train.early_stopping.restore_best is ignored: early stopping is off (enabled: false), "
                             "so the run ends with its last epoch's weights")
            return
        self._restore_best(trainer)

    @staticmethod
    def _restore_best(trainer: Trainer) -> None:
        """The best epoch's weights into the model: the snapshot in memory, else (its best epoch came
        before a resume) best.npz. A damaged best.npz is reported and the run keeps its last weights."""
        best = trainer.checkpointer().best
        file = trainer.run_dir / "checkpoints" / "best.npz"
        if best is None and file.exists():
            try:
                best = ckpt.load_checkpoint(file)
            except ckpt.DamagedCheckpointError as exc:
                problem = (f"{exc}; the best epoch's weights ({trainer.best_epoch}) cannot be restored, so the run "
                           f"ends with its last epoch's weights, as in checkpoints/last.npz")
                trainer.checkpoint_problems.append(problem)
                trainer.say(problem)
                return
        if best is not None:
            trainer.model.load_state_dict(best["model"])
            trainer.say(f"restored the weights of the best epoch ({trainer.best_epoch})")
        elif trainer.best_epoch:  # it came before a resume, and train.checkpoint.save_best kept no file of it
            trainer.say(f"the best epoch's weights ({trainer.best_epoch}) cannot be restored: it came before the run "
                        "was resumed, and train.checkpoint.save_best is off, so no checkpoint holds them; the run "
                        "ends with its last epoch's weights")
