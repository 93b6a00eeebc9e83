"""A sweep's pictures (matplotlib, optional): the monitored metric per grid value, and the
learning curves of the best runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.figures import pyplot, save
from devgrad.experiment.ranking import ranked, value

__all__ = ["draw"]


def draw(sweep_dir: Path, results: list, monitor: tuple) -> list[str]:
    """plots/metric_by_<key>.png (the monitored metric per grid value, mean and seed spread)
    and plots/best_runs.png (the learning curves of the three best runs); the files written,
    relative to the sweep folder (none without matplotlib or a completed run)."""
    plt = pyplot()
    done = [r for r in results if r["status"] == "completed" and value(r, monitor[0]) is not None]
    if plt is None or not done:
        return []
    folder = sweep_dir / "plots"
    folder.mkdir(exist_ok=True)
    written = [_metric_by(plt, folder, done, key, monitor) for key in sorted({k for r in done for k in r["overrides"]})]
    written.append(_best_runs(plt, folder, done, monitor))
    return [str(p.relative_to(sweep_dir)) for p in written]


def _metric_by(plt, folder: Path, done: list, key: str, monitor: tuple) -> Path:
    """The monitored metric of every run against its value of ``key``: the runs, their mean and spread."""
    name, mode = monitor
    labels = []
    for r in done:
        label = json.dumps(r["overrides"].get(key))
        if label not in labels:
            labels.append(label)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, label in enumerate(labels):
        values = [value(r, name) for r in done if json.dumps(r["overrides"].get(key)) == label]
        ax.scatter([i] * len(values), values, color="tab:blue", alpha=0.5, s=18)
        mean = sum(values) / len(values)
        spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        ax.errorbar([i], [mean], yerr=[spread], color="k", capsize=4, marker="_", markersize=14)
    ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.set_xlabel(key)
    ax.set_ylabel(f"{name} ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.set_title(f"{name} by {key}\n(every run; mean ± std over the rest of the grid and seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = folder / f"metric_by_{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.png"
    save(fig, path)
    plt.close(fig)
    return path


def _best_runs(plt, folder: Path, done: list, monitor: tuple) -> Path:
    """The learning curves (the monitored metric per epoch) of the three best runs."""
    name, mode = monitor
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in ranked(done, name, mode)[:3]:
        rows = ckpt.MetricsLog(Path(r["run_dir"])).rows()
        series = [(row["epoch"], row[name]) for row in rows if row.get(name) is not None]
        if series:
            overrides = ", ".join(f"{k.split('.')[-1]}={json.dumps(x)}" for k, x in r["overrides"].items())
            ax.plot(*zip(*series), marker="o" if len(series) <= 30 else None, markersize=3,
                    label=f"#{r['index']} {overrides} (seed {r['seed']})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(name)
    ax.set_title("learning curves of the best runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = folder / "best_runs.png"
    save(fig, path)
    plt.close(fig)
    return path
