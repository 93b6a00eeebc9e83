"""What a run ends with: summary.json's content (``summary_of``) and the ``RunReport`` callback,
which adds the test split's metrics, the composed linear map and the plots to it."""

from __future__ import annotations

from collections.abc import Sequence

from devgrad.data import DataLoader
from devgrad.experiment import neurons, plot_worker, report
from devgrad.experiment.callbacks import BoundaryAnimation, Callback, MetricsFile, NeuronHistory
from devgrad.experiment.plan import CAPTURED_AS
from devgrad.experiment.plot_worker import PlotWorker
from devgrad.experiment.trainer import Trainer

__all__ = ["PlotWorkerStart", "RunReport", "draw", "linear_map", "summary_of"]


class RunReport(Callback):
    """After a completed or pruned run: the test split's metrics, the linear map of a model
    without nonlinearities, and the plots, into summary.json; ``metrics``, ``units`` and
    ``animation`` are the run's metrics files, neuron history and boundary animation callbacks.
    A ``plot_worker.PlotWorker`` started with the training imports matplotlib meanwhile, and
    draws the plots at the end (where one helps)."""

    def __init__(self, metrics: MetricsFile, units: NeuronHistory | None = None,
                 animation: BoundaryAnimation | None = None):
        self.metrics = metrics
        self.units = units
        self.animation = animation
        self.worker: PlotWorker | None = None

    def start_worker(self, trainer: Trainer) -> None:
        """Fork the plot worker (``PlotWorkerStart``: before any callback starts a thread)."""
        if trainer.spec.plots.enabled and self.worker is None:
            self.worker = PlotWorker.start()
        elif not trainer.spec.plots.enabled:
            plot_worker.discard_early()

    def on_train_end(self, trainer: Trainer, status: str | None) -> None:
        if status not in ("completed", "pruned"):  # no plots (Ctrl-C, an error, divergence): no worker
            self._end_worker()

    def _end_worker(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def on_run_end(self, trainer: Trainer, summary: dict) -> None:
        try:
            with trainer.blas_threads():  # the test split and the plots' planes: the model's limit, as in training
                self._results(trainer, summary)
        finally:
            self._end_worker()

    def _results(self, trainer: Trainer, summary: dict) -> None:
        splits = trainer.splits
        if len(splits.X_test):
            test_loader = DataLoader(splits.X_test, splits.y_test, 4096, False, trainer.device, trainer.dtype)
            summary["test"] = {f"test_{k}": v for k, v in trainer.evaluate(test_loader).items()}
        else:
            missing = ", ".join(f"test_{m}" for m in ("loss", *trainer.task.metrics))
            trainer.say(f"the test split is empty ({splits.sizes_text()}): no test metrics ({missing}) for this run")
        if trainer.val_loader is None:
            trainer.say(f"the validation split is empty ({splits.sizes_text()}): no val_ metrics; early stopping "
                        f"and best.npz watch {trainer.monitor}")
        linear = linear_map(trainer)
        if linear is not None:
            summary["linear_map"] = linear
            trainer.say(f"without a nonlinearity the model is one affine map of the standardised inputs: "
                        f"{linear['text']}")
        if not trainer.spec.plots.enabled:
            summary["plots"] = []
            trainer.log.info("plots.enabled is false: no plots drawn (devgrad plot %s draws them)", trainer.run_dir)
            return
        if trainer.checkpoints is not None:
            trainer.checkpoints.end_writer()  # the plots are drawn in forked processes only without threads
        unit_rows = self.units.units.rows() if self.units is not None else None
        frames = self.animation.frames if self.animation is not None else None
        summary["plots"] = draw(trainer, self.metrics.log.rows(), trainer.say, unit_rows, frames, self.worker)


class PlotWorkerStart(Callback):
    """The first of a run's callbacks: starts ``report``'s plot worker with the training, before
    the others start threads (a process with another thread must not fork)."""

    def __init__(self, report: RunReport):
        self.report = report

    def on_train_begin(self, trainer: Trainer, start_epoch: int) -> None:
        self.report.start_worker(trainer)


def linear_map(trainer: Trainer) -> dict | None:
    """The single affine map a model without nonlinearities computes (identity activation, or no
    hidden layer), multiplied out from its layers: of the standardised inputs (``text``), and of
    the data's own, giving a regression's target in its own units (``input_text``)."""
    spec = trainer.spec
    if spec.model.hidden and spec.model.activation != "identity":
        return None
    weight, bias = neurons.composed_map(neurons.linear_layers(trainer.model))
    raw_weight, raw_bias = neurons.input_coordinates(weight, bias, trainer.splits.mean, trainer.splits.std)
    output = "out"
    if trainer.splits.regression:  # the model gives (y − y_mean) / y_std
        splits = trainer.splits
        raw_weight, raw_bias, output = raw_weight * splits.y_std, raw_bias * splits.y_std + splits.y_mean, "y"
    return {"weight": weight.tolist(), "bias": bias.tolist(), "text": neurons.describe_map(weight, bias),
            "input_text": neurons.describe_map(raw_weight, raw_bias, variable="x", output=output)}


def draw(trainer: Trainer, history: list, say, unit_rows: list | None = None, frames=None,
         worker: PlotWorker | None = None) -> list[str]:
    """The run's plots, from plain data: its history; for 2-D classification inputs, the data in
    its own coordinates with the model's class probabilities, each first-layer unit's activation
    and line, and the first layer's weights over the epochs (``unit_rows``, hidden_units.jsonl's);
    for a regression, predicted against true values on the test split (else validation, else
    train); the boundary animation's ``frames``; drawn by ``worker`` when given (and able)."""
    splits, spec = trainer.splits, trainer.spec
    predictions = _predictions(trainer) if trainer.task.regression else None
    boundary = lines = neuron_view = None
    if not trainer.task.regression and splits.n_features == 2:
        boundary = (*splits.all_points(), trainer.predict_proba)
        lines = _boundary_line(trainer)
    lines_are_boundary = lines is not None  # else the units' lines: the boundary is drawn as well
    if splits.n_features == 2 and spec.model.hidden:
        neuron_view, unit_lines = _neuron_view(trainer)
        if boundary is not None and lines is None and neuron_view[-1] <= 8 and None not in unit_lines:
            lines = [(line, f"unit {i + 1}") for i, line in enumerate(unit_lines)]
    unit_history = None
    if unit_rows is not None:  # in the data's own coordinates, like the lines of neurons.png
        unit_history = neurons.unit_history_in_input_coordinates(unit_rows, splits.mean, splits.std)
    return report.draw(trainer.run_dir, spec.name, history, say, boundary,
                       best_epoch=trainer.best_epoch or None, stopped_at=trainer.stopped_at,
                       class_names=splits.classes, predictions=predictions, neuron_view=neuron_view,
                       unit_history=unit_history, lines=lines, frames=frames,
                       margin=trainer.task.loss == "hinge", worker=worker, lines_are_boundary=lines_are_boundary)


def _predictions(trainer: Trainer) -> tuple | None:
    """A regression's true and predicted values on its test split (else validation, else train)."""
    splits = trainer.splits
    for name, X, y in (("test", splits.X_test, splits.y_test), ("validation", splits.X_val, splits.y_val),
                       ("train", splits.X_train, splits.y_train)):
        if len(X):
            return splits.target_values(y), trainer.predict_values(splits.raw_input(X)), name
    return None


def _boundary_line(trainer: Trainer) -> list | None:
    """The line a one-output model without nonlinearities draws between its two classes."""
    spec, splits = trainer.spec, trainer.splits
    if spec.model.hidden and spec.model.activation != "identity":
        return None
    weight, bias = neurons.composed_map(neurons.linear_layers(trainer.model))
    if len(weight) != 1:
        return None
    offset = 0.5 if trainer.task.loss == "mse" else 0.0  # the boundary: where it crosses 0 (0.5 for mse)
    (line,) = neurons.raw_lines(weight, bias - offset, splits.mean, splits.std)
    return [(line, "the composed affine map" if spec.model.hidden else "the learned line w·x + b = 0")]


def _neuron_view(trainer: Trainer) -> tuple[tuple, list]:
    """Each first-layer unit (the first MAX_UNITS of a wider layer) with its line (where it computes
    an affine map of the inputs: None after a LayerNorm), beside the output; and those lines."""
    splits, activation = trainer.splits, trainer.spec.model.activation
    width = len(neurons.first_layer(trainer.model)[0])
    shown = min(width, neurons.MAX_UNITS)
    folded = neurons.first_units(trainer.model)  # None: a LayerNorm ties the units together, no lines
    unit_lines = ([None] * shown if folded is None else
                  neurons.raw_lines(folded[0][:shown], folded[1][:shown], splits.mean, splits.std))

    def units(points):
        return neurons.hidden_activations(trainer.model, activation, splits.standardize_input(points))[:, :shown]

    X_all, y_all = splits.all_points()
    if trainer.task.regression:
        y_all = splits.target_values(y_all)
        output = lambda points: trainer.predict_values(points)[:, None]  # noqa: E731 - one-liner
    else:
        output = trainer.predict_proba
    return (X_all, y_all, units, unit_lines, output, activation, width), unit_lines


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
    summary.update(_capture_summary(trainer))
    return summary


def _capture_summary(trainer: Trainer) -> dict:
    """What train.capture did: steps recorded, steps replayed, or why not (``active``: replayed, and
    still at the end: a step that stopped replaying, its ``why_not`` says why, ran eagerly from
    then on); and the CUDA graph's own entry, as GPU checks read it."""
    step, setting = trainer.step, trainer.spec.train.capture
    gpu = trainer.device.supports_graphs
    why_not = trainer.plan.graph_reason or step.failure
    return {"capture": {"setting": setting, "active": step.replays > 0 and step.failure is None, "as": CAPTURED_AS[gpu],
                        "recorded": step.graphs, "replays": step.replays, "eager_fallbacks": step.diverged,
                        "why_not": why_not},
            "cuda_graph": {"setting": setting, "active": gpu and step.graphs > 0, "graphs": step.graphs if gpu else 0,
                           "replays": step.replays if gpu else 0,
                           "why_not": why_not if gpu else
                           f"{trainer.device} has no CUDA graphs (its steps were captured as NumPy plans)"}}
