"""Plots of a run: learning curves, and for 2-D data the pictures of ``plane_plots`` (matplotlib, optional).

Drawn from plain data — the metrics history, the data points, a function giving class
probabilities — so this module knows nothing of trainers or run folders' other files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devgrad.experiment.figures import PLOT_HINT, Drawing, precomputed, pyplot, render, reused, save, unit_colour
from devgrad.experiment.neurons import plane_grid
from devgrad.experiment.panel_split import PanelDrawing
from devgrad.experiment.plane_plots import animation, decision_boundary, neurons

__all__ = ["PLOT_HINT", "animation", "can_plot", "decision_boundary", "draw", "neurons"]

_save = save  # the sweep's plots draw with the same writer


def _pyplot():
    """matplotlib's pyplot, or None without matplotlib: what every picture of a run or sweep uses."""
    return pyplot()


def can_plot() -> bool:
    """Is matplotlib there to draw with?"""
    return _pyplot() is not None


def draw(run_dir: Path, name: str, history: list, say, boundary=None, best_epoch: int | None = None,
         stopped_at: int | None = None, class_names=None, predictions=None, neuron_view=None,
         unit_history=None, lines=None, frames=None, margin: bool = False, worker=None,
         lines_are_boundary: bool = False) -> list[str]:
    """Write plots/learning_curves.png (marking ``best_epoch`` and an early stop at ``stopped_at``),
    decision_boundary.png when ``boundary`` is given as (points (n, 2), labels (n,),
    predict_proba: points -> (n, classes)), its classes named by ``class_names`` (with ``margin``,
    a hinge-loss model's score and margin instead of probabilities), and for a
    regression predictions.png when ``predictions`` is given as (true values, predicted values,
    the split's name); neurons.png when ``neuron_view`` is (points, targets, units: points ->
    activations, their lines, output: points -> class probabilities or (n, 1) values, the
    activation's name, the layer's width); hidden_units.png from ``unit_history`` (rows of epoch, weight,
    bias, in the data's own coordinates); ``lines`` ((a, c) for a·x + c = 0, label) are drawn on the
    decision boundary (``lines_are_boundary``: they are the model's boundary itself); training.gif
    from ``frames`` (a ``neurons.BoundaryFrames``) with the points of ``boundary``. The model is
    evaluated here, then the figures are drawn side by side on the machine's cores
    (``figures.render``), by ``worker`` (a ``plot_worker.PlotWorker``) when one is given and can.
    Returns the files written, relative to ``run_dir``."""
    if worker is None and _pyplot() is None:
        return _skipped(say)
    plots = Path(run_dir) / "plots"
    plots.mkdir(exist_ok=True)
    jobs: list = []  # (weight: about how long it takes, the file, how to draw it), with the values bound now

    def job(weight: float, file: str, function, *args, **kwargs) -> None:
        jobs.append((weight, plots / file, Drawing(function, *args, plots / file, name, **kwargs)))

    if history:
        job(1.0, "learning_curves.png", learning_curves, history, best_epoch=best_epoch, stopped_at=stopped_at)
    if worker is not None:
        worker.begin(jobs)  # drawn while the model is evaluated for the others
    if boundary is not None:
        X_all, y_all, predict_proba = boundary
        proba = precomputed(predict_proba, _plane_points(X_all, BOUNDARY_RESOLUTION))
        job(1.0, "decision_boundary.png", decision_boundary, X_all, y_all, proba, class_names=class_names,
            lines=lines, margin=margin, lines_are_boundary=lines_are_boundary)
    if neuron_view is not None:
        X_points, targets, units, unit_lines, output, activation_name, total_units = neuron_view
        points = _plane_points(X_points, NEURON_RESOLUTION)
        job(NEURONS_WEIGHT + PANEL_WEIGHT * len(unit_lines), "neurons.png", neurons, X_points, targets,
            precomputed(units, points), unit_lines, precomputed(output, points), activation_name=activation_name,
            total_units=total_units)
        weight, path, drawing = jobs[-1]  # its unit panels may be shared with another drawing process
        jobs[-1] = (weight, path, PanelDrawing(drawing, panels=len(unit_lines), panel_weight=PANEL_WEIGHT))
    if unit_history:
        job(1.2, "hidden_units.png", hidden_units, unit_history)
    if frames is not None and frames.frames and boundary is not None:
        job(0.5 * len(frames.frames), "training.gif", animation, frames, boundary[0], boundary[1])
    if predictions is not None:
        job(1.0, "predictions.png", predicted_vs_true, *predictions)
    written = worker.render(jobs) if worker is not None else None
    if written is None:  # no worker, or one that could not draw them: drawn here (its errors raised here)
        if _pyplot() is None:
            return _skipped(say)
        written = render(jobs)
    return [str(Path(p).relative_to(run_dir)) for p in written]


def _skipped(say) -> list[str]:
    say(f"plots skipped: matplotlib is not installed; {PLOT_HINT}")
    return []


# neurons.png's weight, as ``render`` compares them (a new learning curves figure: 1): its frame,
# output panel and PNG, and each unit's panel (2-core x86 CPU, 2026-12-07: 0.27 s of CPU for
# learning curves, 0.15 s and 0.03 s)
NEURONS_WEIGHT = 0.75
PANEL_WEIGHT = 0.15
BOUNDARY_RESOLUTION = 200
NEURON_RESOLUTION = 100


def _plane_points(X_all: np.ndarray, resolution: int) -> np.ndarray:
    gx, gy = plane_grid(X_all, resolution)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def learning_curves(plt, history: list, path: Path, title: str, best_epoch: int | None = None,
                    stopped_at: int | None = None) -> Path:
    """Each metric per epoch, train and validation, one panel per metric; the best epoch and an
    early stop marked. One legend for all the panels, above them: it covers no curve."""
    epochs = [r["epoch"] for r in history]
    marker = "o" if len(epochs) <= 30 else None  # a single epoch is a point: it needs a marker to show
    metrics = [m for m in ("loss", "accuracy", "r2", "mae") if any(r.get(f"train_{m}") is not None for r in history)]
    width = 4.6 * len(metrics) + 0.4
    with reused(plt, ("learning_curves", len(metrics)),
                lambda: plt.subplots(1, len(metrics), figsize=(width, 4), squeeze=False)) as (fig, axes):
        for ax, metric in zip(axes[0], metrics):
            for split, line_style in (("train", "-"), ("val", "--")):
                values = [r.get(f"{split}_{metric}") for r in history]
                if any(v is not None for v in values):
                    ax.plot(epochs, [np.nan if v is None else v for v in values], line_style, marker=marker,
                            markersize=3, label=split, color="tab:blue" if split == "train" else "tab:orange")
            if best_epoch:
                ax.axvline(best_epoch, color="tab:green", linestyle=":", linewidth=1.2,
                           label=f"best (epoch {best_epoch})")
            if stopped_at:
                ax.axvline(stopped_at, color="tab:red", linestyle="-.", linewidth=1.2,
                           label=f"early stop (epoch {stopped_at})")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole numbers
            ax.set_ylabel(metric)
            if metric == "loss" and all((r.get("train_loss") or 1) > 0 for r in history):
                _plain_log_scale(ax)
                ax.set_ylabel("loss (log scale)")
            ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, frameon=False,
                   bbox_to_anchor=(0.5, 1 - 0.42 / 4))
        fig.suptitle(f"{title}: learning curves", y=1 - 0.08 / 4, va="top")
        # fixed margins in inches (tight_layout costs a quarter of a second); the y labels fit in 0.8 in
        fig.subplots_adjust(left=0.8 / width, right=1 - 0.15 / width, bottom=0.5 / 4, top=1 - 0.8 / 4,
                            wspace=0.8 / 4.6)
        save(fig, path)
    return path


def _plain_log_scale(ax) -> None:
    """A log y axis labelled 0.3, 0.02, 1e-05: matplotlib's 3×10⁻¹ labels are wider than the margin
    and pushed the axis label off the figure."""
    from matplotlib.ticker import LogFormatter  # noqa: PLC0415 - optional dependency

    class PlainLogFormatter(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:.2g}"

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLogFormatter(labelOnlyBase=True))
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def predicted_vs_true(plt, y_true: np.ndarray, y_pred: np.ndarray, split: str, path: Path, name: str) -> Path:
    """A regression's predictions against the true values (the diagonal is a perfect model)."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    fig, ax = plt.subplots(figsize=(5.8, 5.2))
    ax.scatter(y_true, y_pred, s=12, alpha=0.7, edgecolors="w", linewidths=0.3)
    lo = float(min(y_true.min(), y_pred.min()))
    hi = float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], color="k", linewidth=1, linestyle="--", label="predicted = true")
    residual = y_pred - y_true
    total = ((y_true - y_true.mean()) ** 2).sum()
    r2 = 1 - (residual ** 2).sum() / total if total > 0 else float("nan")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title(f"{name}: {split} split\n(n={len(y_true)}, R² {r2:.3f}, MAE {np.abs(residual).mean():.3g})",
                 fontsize=10, y=1.0, pad=6)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")  # the points gather along the diagonal: this corner stays empty
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.1, top=0.89)
    save(fig, path)
    plt.close(fig)
    return path


def hidden_units(plt, history: list, path: Path, name: str) -> Path:
    """Every first-layer unit's weights and bias over the epochs (``history``: rows with epoch,
    weight (units, 2), bias (units,), in the data's own coordinates like neurons.png: unit i's
    line is w₁x₁ + w₂x₂ + b = 0); identical units draw one line."""
    epochs = [r["epoch"] for r in history]
    weight = np.array([r["weight"] for r in history], dtype=float)  # (epochs, units, inputs)
    bias = np.array([r["bias"] for r in history], dtype=float)
    k, n_in = weight.shape[1], weight.shape[2]
    subscripts = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    series = [(f"w{str(j + 1).translate(subscripts)} (weight of x{str(j + 1).translate(subscripts)})",
               weight[:, :, j]) for j in range(n_in)] + [("b (bias)", bias)]
    width = 3.9 * len(series) + 0.4
    with reused(plt, ("hidden_units", len(series)),
                lambda: plt.subplots(1, len(series), figsize=(width, 3.6), squeeze=False)) as (fig, axes):
        marker = "o" if len(epochs) <= 30 else None
        for ax, (label, values) in zip(axes[0], series):
            for i in range(k):
                ax.plot(epochs, values[:, i], marker=marker, markersize=3, linewidth=1.4, alpha=0.85,
                        color=unit_colour(plt, i), label=f"unit {i + 1}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        if k <= 8:
            handles, labels = axes[0][0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="upper center", ncol=k, fontsize=8, frameon=False,
                       bbox_to_anchor=(0.5, 1 - 0.55 / 3.6))
        spread = float(np.max(np.ptp(np.concatenate([weight, bias[:, :, None]], axis=2), axis=1)))
        verdict = ("every unit has the same weights at every epoch: the symmetry was never broken" if spread < 1e-9
                   else f"the units differ (largest spread between units {spread:.3g})")
        fig.suptitle(f"{name}: first-layer weights over training; {verdict}\n"
                     "in the data's own coordinates x₁, x₂, as in neurons.png", fontsize=10, y=1 - 0.06 / 3.6, va="top")
        fig.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, bottom=0.5 / 3.6, top=1 - 0.85 / 3.6,
                            wspace=0.8 / 3.9)
        save(fig, path)
    return path
