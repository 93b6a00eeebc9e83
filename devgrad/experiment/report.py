"""Plots of a run: learning curves, and for 2-D data the decision boundary (matplotlib, optional).

Drawn from plain data — the metrics history, the data points, a function giving class
probabilities — so this module knows nothing of trainers or run folders' other files.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from devgrad.experiment.neurons import plane_grid
from devgrad.io import atomic_write

PLOT_HINT = "pip install 'devgrad[plot]' (matplotlib) to get plots"


def _pyplot():
    """matplotlib's pyplot on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency (the plot extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    return plt


def can_plot() -> bool:
    """Is matplotlib there to draw with?"""
    return _pyplot() is not None


def draw(run_dir: Path, name: str, history: list, say, boundary=None, best_epoch: int | None = None,
         stopped_at: int | None = None, class_names=None, predictions=None, neuron_view=None,
         unit_history=None, lines=None, frames=None) -> list[str]:
    """Write plots/learning_curves.png (marking ``best_epoch`` and an early stop at ``stopped_at``),
    decision_boundary.png when ``boundary`` is given as (points (n, 2), labels (n,),
    predict_proba: points -> (n, classes)), its classes named by ``class_names``, and for a
    regression predictions.png when ``predictions`` is given as (true values, predicted values,
    the split's name); neurons.png when ``neuron_view`` is (points, targets, units: points ->
    activations, their lines, output: points -> class probabilities or (n, 1) values, the
    activation's name, the layer's width); hidden_units.png from ``unit_history`` (rows of epoch, weight,
    bias); ``lines`` ((a, c) for a·x + c = 0, label) are drawn on the decision boundary;
    training.gif from ``frames`` (a ``neurons.BoundaryFrames``) with the points of ``boundary``.
    Returns the files written, relative to ``run_dir``."""
    plt = _pyplot()
    if plt is None:
        say(f"plots skipped: matplotlib is not installed; {PLOT_HINT}")
        return []
    plots = Path(run_dir) / "plots"
    plots.mkdir(exist_ok=True)
    written = []
    if history:
        written.append(learning_curves(plt, history, plots / "learning_curves.png", name, best_epoch, stopped_at))
    if boundary is not None:
        written.append(decision_boundary(plt, *boundary, plots / "decision_boundary.png", name, class_names,
                                         lines=lines))
    if neuron_view is not None:
        X_all, y_all, units, unit_lines, output, activation_name, total_units = neuron_view
        written.append(neurons(plt, X_all, y_all, units, unit_lines, output, plots / "neurons.png", name,
                               activation_name, total_units=total_units))
    if unit_history:
        written.append(hidden_units(plt, unit_history, plots / "hidden_units.png", name))
    if frames is not None and frames.frames and boundary is not None:
        written.append(animation(plt, frames, boundary[0], boundary[1], plots / "training.gif", name))
    if predictions is not None:
        written.append(predicted_vs_true(plt, *predictions, plots / "predictions.png", name))
    return [str(Path(p).relative_to(run_dir)) for p in written]


def learning_curves(plt, history: list, path: Path, title: str, best_epoch: int | None = None,
                    stopped_at: int | None = None) -> Path:
    epochs = [r["epoch"] for r in history]
    marker = "o" if len(epochs) <= 30 else None  # a single epoch is a point: it needs a marker to show
    metrics = [m for m in ("loss", "accuracy", "r2", "mae") if any(r.get(f"train_{m}") is not None for r in history)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for split, style in (("train", "-"), ("val", "--")):
            values = [r.get(f"{split}_{metric}") for r in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], style, marker=marker, markersize=3,
                        label=split)
        if best_epoch:
            ax.axvline(best_epoch, color="tab:green", linestyle=":", linewidth=1, label=f"best (epoch {best_epoch})")
        if stopped_at:
            ax.axvline(stopped_at, color="tab:red", linestyle="-.", linewidth=1,
                       label=f"early stop (epoch {stopped_at})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_ylabel(metric)
        if metric == "loss" and all((r.get("train_loss") or 1) > 0 for r in history):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{title}: learning curves")
    width = 5.5 * len(metrics)  # fixed margins in inches: tight_layout costs a quarter of a second
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.2 / width, bottom=0.13, top=0.88, wspace=0.3)
    _save(fig, path)
    plt.close(fig)
    return path


def decision_boundary(plt, X_all: np.ndarray, y_all: np.ndarray, predict_proba, path: Path, name: str,
                      class_names=None, resolution: int = 200, lines=None) -> Path:
    """P(class) over a grid of the input space, with the data points on top, and ``lines``
    ([((a, c), label), ...]: a·x + c = 0) drawn over it."""
    gx, gy = plane_grid(X_all, resolution)
    probs = predict_proba(np.stack([gx.ravel(), gy.ravel()], axis=1))
    fig, ax = plt.subplots(figsize=(6, 5.2))
    if probs.shape[1] == 2:
        image = ax.contourf(gx, gy, probs[:, 1].reshape(gx.shape), levels=np.linspace(0, 1, 21), cmap="RdBu_r",
                            alpha=0.8)
        ax.contour(gx, gy, probs[:, 1].reshape(gx.shape), levels=[0.5], colors="k", linewidths=1)
        fig.colorbar(image, ax=ax, label="P(class 1)")
        ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="RdBu_r", vmin=0, vmax=1, s=9, edgecolors="w",
                   linewidths=0.3)
    else:
        # One colour per class, the same for the predicted regions and the points.
        from matplotlib.colors import ListedColormap  # noqa: PLC0415 - optional dependency

        k = probs.shape[1]
        colours = [plt.get_cmap("tab10")(i % 10) for i in range(k)]
        ax.contourf(gx, gy, probs.argmax(axis=1).reshape(gx.shape), levels=np.arange(k + 1) - 0.5,
                    cmap=ListedColormap(colours), alpha=0.3)
        ax.scatter(X_all[:, 0], X_all[:, 1], c=[colours[i] for i in y_all], s=9, edgecolors="w", linewidths=0.3)
        names = class_names if class_names is not None and len(class_names) == k else range(k)
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[i], label=str(names[i]))
                   for i in range(k)]
        ax.legend(handles=handles, title="class", loc="best", fontsize=8)
    for i, ((a, c), label) in enumerate(lines or []):
        _draw_line(ax, a, c, gx, gy, color=plt.get_cmap("Dark2")(i % 8), linewidth=1.5, linestyle="--", label=label)
    if lines and len(lines) <= 8 and probs.shape[1] == 2:
        ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(f"{name}: decision boundary")
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.93)  # fixed: tight_layout is slow
    _save(fig, path)
    plt.close(fig)
    return path


def predicted_vs_true(plt, y_true: np.ndarray, y_pred: np.ndarray, split: str, path: Path, name: str) -> Path:
    """A regression's predictions against the true values (the diagonal is a perfect model)."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 5.2))
    ax.scatter(y_true, y_pred, s=12, alpha=0.7, edgecolors="w", linewidths=0.3)
    lo = float(min(y_true.min(), y_pred.min()))
    hi = float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], color="k", linewidth=1, linestyle="--", label="predicted = true")
    residual = y_pred - y_true
    total = ((y_true - y_true.mean()) ** 2).sum()
    r2 = 1 - (residual ** 2).sum() / total if total > 0 else float("nan")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title(f"{name}: {split} split (n={len(y_true)}, R² {r2:.3f}, MAE {np.abs(residual).mean():.3g})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def _draw_line(ax, a: np.ndarray, c: float, gx: np.ndarray, gy: np.ndarray, **style) -> bool:
    """The line a·x + c = 0, clipped to the grid's extent; False when it misses that extent."""
    x0, x1 = gx.min(), gx.max()
    y0, y1 = gy.min(), gy.max()
    drawn = False
    if abs(a[1]) > 1e-12:
        xs = np.linspace(x0, x1, 400)
        ys = -(a[0] * xs + c) / a[1]
        keep = (ys >= y0) & (ys <= y1)
        drawn = bool(keep.any())
        if drawn:
            ax.plot(xs[keep], ys[keep], **style)
    elif abs(a[0]) > 1e-12 and x0 <= -c / a[0] <= x1:
        ax.plot([-c / a[0]] * 2, [y0, y1], **style)
        drawn = True
    if not drawn and "label" in style:  # say so in the legend rather than drop it silently
        ax.plot([], [], **{**style, "label": f"{style['label']} (outside this view)"})
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    return drawn


def neurons(plt, X_all: np.ndarray, y_all: np.ndarray, units, lines, predict_proba, path: Path, name: str,
            activation_name: str, resolution: int = 100, total_units: int | None = None) -> Path:
    """One panel per first-layer unit: its activation over the input plane (``units``: raw
    points -> (n, units)) with its line a·x + c = 0 (``lines``), then the network's output with
    the lines on it. Images, not contours, and a fixed layout: a few tenths of a second."""
    gx, gy = plane_grid(X_all, resolution)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    acts = units(points)
    k = acts.shape[1]
    cols = min(k + 1, 4)
    rows = (k + 1 + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.1 * rows), squeeze=False)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.06, top=1 - 0.55 / rows, wspace=0.25, hspace=0.35)
    extent = (gx.min(), gx.max(), gy.min(), gy.max())
    colours = [plt.get_cmap("tab10")(i % 10) for i in range(k)]
    for i in range(k):
        ax = axes.flat[i]
        a_i = acts[:, i].reshape(gx.shape)
        ax.imshow(a_i, origin="lower", extent=extent, aspect="auto", cmap="viridis")
        _draw_line(ax, *lines[i], gx, gy, color="w", linewidth=1.6)
        a, c = lines[i]
        ax.set_title(f"unit {i + 1}: {activation_name}({a[0]:.2g}·x₁ {a[1]:+.2g}·x₂ {c:+.2g})\n"
                     f"from {a_i.min():.2g} (dark) to {a_i.max():.2g} (light)", fontsize=7)
        ax.tick_params(labelsize=6)
    ax = axes.flat[k]
    probs = predict_proba(points)
    if probs.shape[1] == 1:  # a regression: the predicted value, and the targets in the same colours
        lo, hi = float(min(probs.min(), np.min(y_all))), float(max(probs.max(), np.max(y_all)))
        ax.imshow(probs[:, 0].reshape(gx.shape), origin="lower", extent=extent, aspect="auto", cmap="viridis",
                  vmin=lo, vmax=hi, alpha=0.85)
        ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="viridis", vmin=lo, vmax=hi, s=5, edgecolors="w",
                   linewidths=0.2)
    elif probs.shape[1] == 2:
        ax.imshow(probs[:, 1].reshape(gx.shape), origin="lower", extent=extent, aspect="auto", cmap="RdBu_r",
                  vmin=0, vmax=1, alpha=0.8)
        ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="RdBu_r", s=3, linewidths=0, vmin=0, vmax=1)
    else:
        ax.imshow(probs.argmax(axis=1).reshape(gx.shape), origin="lower", extent=extent, aspect="auto",
                  cmap="tab10", vmin=0, vmax=9, alpha=0.35)
        ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="tab10", s=3, linewidths=0, vmin=0, vmax=9)
    for i in range(min(k, 8)):  # beyond 8 lines the output is hidden under them
        _draw_line(ax, *lines[i], gx, gy, color=colours[i], linewidth=1.4, label=f"unit {i + 1}")
    ax.set_title("the network's output, with " + ("every unit's line" if k <= 8 else "the first 8 units' lines"),
                 fontsize=7)
    ax.tick_params(labelsize=6)
    if k <= 8:
        ax.legend(fontsize=6, loc="best")
    for extra in list(axes.flat)[k + 1:]:
        extra.axis("off")
    shown = f"{k} units" if not total_units or total_units == k else f"the first {k} of {total_units} units"
    fig.suptitle(f"{name}: what each hidden unit computes (the first layer: {shown})")
    _save(fig, path)
    plt.close(fig)
    return path


def animation(plt, frames, X_all: np.ndarray, y_all: np.ndarray, path: Path, name: str, fps: int = 8) -> Path:
    """plots/training.gif: the decision boundary epoch by epoch (matplotlib's Pillow writer)."""
    from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: PLC0415 - optional dependency

    binary = int(np.max(y_all)) <= 1  # two classes: P(class 1); more: the predicted class
    fig, ax = plt.subplots(figsize=(5, 4.6))
    first = frames.frames[0][1]
    image = ax.imshow(first, origin="lower", extent=frames.extent, aspect="auto",
                      cmap="RdBu_r" if binary else "tab10", vmin=0, vmax=1 if binary else 9,
                      alpha=0.8 if binary else 0.4)
    ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="RdBu_r" if binary else "tab10", vmin=0,
               vmax=1 if binary else 9, s=5, edgecolors="w", linewidths=0.2)
    title = ax.set_title("")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.11, top=0.92)

    def show(i):
        epoch, frame = frames.frames[i]
        image.set_data(frame)
        title.set_text(f"{name}: decision boundary after epoch {epoch}")
        return image, title

    movie = FuncAnimation(fig, show, frames=len(frames.frames), blit=False)
    tmp = path.with_name(path.name + ".partial.gif")
    movie.save(str(tmp), writer=PillowWriter(fps=fps), dpi=80)
    plt.close(fig)
    tmp.replace(path)  # the finished file appears at once
    return path


def hidden_units(plt, history: list, path: Path, name: str) -> Path:
    """Every first-layer unit's weights and bias over the epochs (``history``: rows with epoch,
    weight (units, 2), bias (units,)); identical units draw one line."""
    epochs = [r["epoch"] for r in history]
    weight = np.array([r["weight"] for r in history], dtype=float)  # (epochs, units, inputs)
    bias = np.array([r["bias"] for r in history], dtype=float)
    k, n_in = weight.shape[1], weight.shape[2]
    series = [(f"w{j + 1}", weight[:, :, j]) for j in range(n_in)] + [("b", bias)]
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.4), squeeze=False)
    marker = "o" if len(epochs) <= 30 else None
    for ax, (label, values) in zip(axes[0], series):
        for i in range(k):
            ax.plot(epochs, values[:, i], marker=marker, markersize=3, linewidth=1.4, alpha=0.8, label=f"unit {i + 1}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if k <= 8:
        axes[0][0].legend(fontsize=7)
    spread = float(np.max(np.ptp(np.concatenate([weight, bias[:, :, None]], axis=2), axis=1)))
    verdict = ("every unit has the same weights at every epoch: the symmetry was never broken" if spread < 1e-9
               else f"the units differ (largest spread between units {spread:.3g})")
    fig.suptitle(f"{name}: first-layer weights over training; {verdict}", fontsize=10)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.86, wspace=0.3)
    _save(fig, path)
    plt.close(fig)
    return path


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write(path, buffer.getvalue())
