"""Plots of a run: learning curves, and for 2-D data the decision boundary (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PLOT_HINT = "pip install 'devgrad[plot]' (matplotlib) to get plots"


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def draw(run_dir: Path, history: list, trainer, say) -> list[str]:
    """Write plots/learning_curves.png (and decision_boundary.png for 2-D data); returns file names."""
    plt = _pyplot()
    if plt is None:
        say(f"plots skipped: matplotlib is not installed; {PLOT_HINT}")
        return []
    plots = Path(run_dir) / "plots"
    plots.mkdir(exist_ok=True)
    written = []
    if history:
        written.append(learning_curves(plt, history, plots / "learning_curves.png", trainer.spec["name"]))
    if trainer.splits.n_features == 2:
        written.append(decision_boundary(plt, trainer, plots / "decision_boundary.png"))
    return [str(Path(p).relative_to(run_dir)) for p in written]


def learning_curves(plt, history: list, path: Path, title: str) -> Path:
    epochs = [r["epoch"] for r in history]
    metrics = [m for m in ("loss", "accuracy") if any(r.get(f"train_{m}") is not None for r in history)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for split, style in (("train", "-"), ("val", "--")):
            values = [r.get(f"{split}_{metric}") for r in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], style, label=split)
        ax.set_xlabel("epoch")
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


def decision_boundary(plt, trainer, path: Path, resolution: int = 200) -> Path:
    """P(class) over a grid in the original input space, with the data points on top."""
    splits = trainer.splits
    X_all = np.concatenate([splits.X_train, splits.X_val, splits.X_test])
    y_all = np.concatenate([splits.y_train, splits.y_val, splits.y_test])
    if splits.mean is not None:
        X_all = X_all * splits.std + splits.mean  # back to the data's own coordinates
    lo, hi = X_all.min(axis=0), X_all.max(axis=0)
    pad = 0.08 * (hi - lo + 1e-9)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
    probs = trainer.predict_proba(np.stack([gx.ravel(), gy.ravel()], axis=1))
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
        from matplotlib.colors import ListedColormap

        k = probs.shape[1]
        colours = [plt.get_cmap("tab10")(i % 10) for i in range(k)]
        ax.contourf(gx, gy, probs.argmax(axis=1).reshape(gx.shape), levels=np.arange(k + 1) - 0.5,
                    cmap=ListedColormap(colours), alpha=0.3)
        ax.scatter(X_all[:, 0], X_all[:, 1], c=[colours[i] for i in y_all], s=9, edgecolors="w", linewidths=0.3)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(f"{trainer.spec['name']}: decision boundary")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def _save(fig, path: Path) -> None:
    import io

    from devgrad.io import atomic_write

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write(path, buffer.getvalue())


def redraw(run_dir, quiet: bool = False) -> list[str]:
    """``devgrad plot RUN_DIR``: rebuild the trainer from the run's config and best/last checkpoint."""
    from devgrad.backend import device as resolve_device
    from devgrad.experiment import checkpoint as ckpt
    from devgrad.experiment.runner import RunError, Trainer, _close_logger
    from devgrad.experiment.spec import resolve

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise RunError(f"{run_dir} is not a run folder (no config.yaml)")
    spec = resolve(run_dir / "config.yaml")
    state_file = next((p for p in (run_dir / "checkpoints" / "best.npz", run_dir / "checkpoints" / "last.npz")
                       if p.exists()), None)
    if state_file is None:
        raise RunError(f"{run_dir} has no checkpoint to plot from")
    trainer = Trainer(spec, run_dir, resolve_device("cpu"), quiet=True)
    try:
        trainer.model.load_state_dict(ckpt.load_checkpoint(state_file)["model"])
        messages = []
        written = draw(run_dir, ckpt.MetricsLog(run_dir).rows(), trainer, messages.append)
    finally:
        _close_logger(trainer.log)
    if not quiet:
        for m in messages:
            print(m)
        for w in written:
            print(run_dir / w)
    return written
