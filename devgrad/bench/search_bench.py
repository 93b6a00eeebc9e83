"""``devgrad bench --search``: a TPE study with the median pruner against a grid, and what MLflow
tracking costs a run.

On ``digits`` (scikit-learn's 8x8 images, 30 epochs, plots off): a 24-point grid over the
learning rate (6 values) and the hidden width (4) against a 24-trial TPE study over the same
ranges with the median pruner, both with 2 workers on the local pool. Reported: the test
accuracy of the run each picks (best ``val_loss``), the best test accuracy of any of its runs,
the pruned trials, and the wall time of the whole sweep. Then one ``spirals`` run without and with
``--track mlflow`` (a local SQLite store in a temporary folder): seconds per epoch of each, and
the overhead in percent of the untracked run's ``wall_seconds``.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from devgrad.bench.report import rows_table
from devgrad.experiment.commands import run
from devgrad.experiment.search import sweep

DIGITS: dict[str, Any] = {
    "name": "bench_search", "seed": 0, "device": "cpu",
    "data": {"source": "sklearn:digits", "split": {"train": 0.7, "val": 0.15, "test": 0.15}},
    "model": {"hidden": [128], "activation": "relu", "init": "kaiming_uniform"},
    "loss": "cross_entropy", "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.01},
    "schedule": {"name": "cosine"}, "train": {"epochs": 30, "batch_size": 64}, "plots": {"enabled": False},
}
LRS = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
HIDDEN = [[32], [64], [128], [256]]
SPIRALS: dict[str, Any] = {
    "name": "bench_tracking", "seed": 0, "device": "cpu",
    "data": {"source": "spirals", "n_samples": 3000, "n_classes": 3, "noise": 0.02},
    "model": {"hidden": [64, 64], "activation": "relu"}, "loss": "cross_entropy",
    "optimizer": {"name": "adam", "lr": 0.01}, "train": {"epochs": 60, "batch_size": 128},
    "plots": {"enabled": False},
}


def _picked(result) -> tuple[float | None, float | None]:
    """The test accuracy of the run the sweep picks (best val_loss) and the best of any run."""
    accuracy = [(r.get("test") or {}).get("test_accuracy") for r in result.results]
    best = result.best
    return ((best.get("test") or {}).get("test_accuracy") if best else None,
            max((a for a in accuracy if a is not None), default=None))


def search_bench(say=None) -> list[dict]:
    """One row for the grid and one for the TPE study (2 workers each), one for tracking."""
    rows = []
    studies: dict[str, dict[str, Any]] = {"grid": {"grid": {"optimizer.lr": LRS, "model.hidden": HIDDEN}},
               "tpe+median": {"search": "tpe", "trials": len(LRS) * len(HIDDEN), "pruner": "median",
                              "space": {"optimizer.lr": {"loguniform": [LRS[0], LRS[-1]]},
                                        "model.hidden": {"choice": HIDDEN}}}}
    for name, options in studies.items():
        if say is not None:
            say(f"timing the {name} sweep on digits (24 runs, 2 workers)")
        with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            result = sweep(DIGITS, jobs=2, out=Path(out), quiet=True, **options)
            wall = time.perf_counter() - start
            picked, best = _picked(result)  # reads the sweep folder
        rows.append({"sweep": name, "runs": len(result.results), "picked_test_accuracy": picked,
                     "best_test_accuracy": best, "pruned": sum(r["status"] == "pruned" for r in result.results),
                     "wall_seconds": round(wall, 1), "cores": os.cpu_count()})
    rows.append(tracking_overhead(say))
    return rows


def tracking_overhead(say=None) -> dict:
    """One spirals run without and with MLflow tracking (a local SQLite store): seconds per epoch."""
    epochs = SPIRALS["train"]["epochs"]
    times = {}
    with tempfile.TemporaryDirectory() as out:
        for tracked in (False, True):
            if say is not None:
                say(f"timing a spirals run {'with' if tracked else 'without'} MLflow tracking")
            spec = dict(SPIRALS)
            if tracked:
                spec["tracking"] = {"mlflow": {"uri": f"sqlite:///{Path(out) / 'mlflow.db'}", "experiment": "bench"}}
            here = os.getcwd()
            os.chdir(out)  # a local store keeps its artifacts in ./mlruns
            try:
                times[tracked] = run(spec, out=Path(out) / "runs", quiet=True).summary["wall_seconds"]
            finally:
                os.chdir(here)
    return {"sweep": "tracking", "per_epoch_off": round(times[False] / epochs, 4),
            "per_epoch_on": round(times[True] / epochs, 4),
            "overhead_percent": round(100 * (times[True] - times[False]) / times[False], 1)}


def format_search(rows: list[dict]) -> str:
    heading = ["digits (30 epochs): a 24-point grid (lr x hidden) vs a 24-trial TPE study with the median pruner, "
               "2 workers (picked: the test accuracy of the run with the best val_loss)",
               f"{'sweep':<11} {'runs':>5} {'pruned':>7} {'picked':>8} {'best':>8} {'wall':>9}"]
    table = rows_table(heading, [r for r in rows if r["sweep"] != "tracking"], "sweep", 11, lambda r: (
        f"{r['sweep']:<11} {r['runs']:>5} {r['pruned']:>7} {_pct(r['picked_test_accuracy']):>8} "
        f"{_pct(r['best_test_accuracy']):>8} {r['wall_seconds']:>8.1f}s"))
    for r in rows:
        if r["sweep"] == "tracking":
            table += (f"\nspirals run, {SPIRALS['train']['epochs']} epochs: {r['per_epoch_off'] * 1000:.1f} ms/epoch "
                      f"untracked, {r['per_epoch_on'] * 1000:.1f} ms/epoch with MLflow tracking "
                      f"({r['overhead_percent']:+.1f}% of wall_seconds)")
    return table


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
