"""Plots of a run: learning curves, and for 2-D data the decision boundary (matplotlib, optional).

Drawn from plain data — the metrics history, the data points, a function giving class
probabilities — so this module knows nothing of trainers or run folders' other files.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

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
         stopped_at: int | None = None, class_names=None, predictions=None) -> list[str]:
    """Write plots/learning_curves.png (marking ``best_epoch`` and an early stop at ``stopped_at``),
    decision_boundary.png when ``boundary`` is given as (points (n, 2), labels (n,),
    predict_proba: points -> (n, classes)), its classes named by ``class_names``, and for a
    regression predictions.png when ``predictions`` is given as (true values, predicted values,
    the split's name); returns the files written, relative to ``run_dir``."""
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
        written.append(decision_boundary(plt, *boundary, plots / "decision_boundary.png", name, class_names))
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
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def decision_boundary(plt, X_all: np.ndarray, y_all: np.ndarray, predict_proba, path: Path, name: str,
                      class_names=None, resolution: int = 200) -> Path:
    """P(class) over a grid of the input space, with the data points on top."""
    lo, hi = X_all.min(axis=0), X_all.max(axis=0)
    pad = 0.08 * (hi - lo + 1e-9)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
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
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(f"{name}: decision boundary")
    fig.tight_layout()
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


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write(path, buffer.getvalue())
