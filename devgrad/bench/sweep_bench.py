"""``devgrad bench --sweep``: what running a sweep's runs side by side buys on this machine.

Eight small runs (the ``spirals`` spec with early stopping off and 60 epochs, two learning
rates × four seeds), as one sweep with 1 worker and with 2 workers, on the local process pool
and on a Dask LocalCluster. Reported: the sweep's wall time (everything: workers starting,
the runs, results and plots), the speed-up of 2 workers over 1, and each run's own training
time (its ``wall_seconds``) with 2 workers against 1 — the BLAS-oversubscription check: a run
that shares the machine with another should take about as long as a run alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

from devgrad.bench.report import rows_table
from devgrad.experiment.sweeps import sweep

SPEC = {
    "name": "bench_sweep", "seed": 0, "device": "cpu",
    "data": {"source": "spirals", "n_samples": 3000, "n_classes": 3, "noise": 0.02},
    "model": {"hidden": [64, 64, 64], "activation": "relu", "init": "kaiming_uniform"},
    "loss": "cross_entropy", "optimizer": {"name": "adam", "lr": 0.01}, "schedule": {"name": "cosine"},
    "train": {"epochs": 60, "batch_size": 128},
}
GRID = {"optimizer.lr": [0.01, 0.005]}
SEEDS = 4


def _have_dask() -> bool:
    try:
        import dask.distributed  # noqa: F401, PLC0415 - optional
    except ImportError:
        return False
    return True


def sweep_bench(executors=("local", "dask"), say=None) -> list[dict]:
    """One row per executor: wall seconds with 1 and 2 workers, the speed-up, per-run times;
    ``say`` (a function of one line) hears which sweep is being timed."""
    rows = []
    for executor in executors:
        if executor == "dask" and not _have_dask():
            rows.append({"executor": "dask", "skipped": "Dask distributed is not installed (the dask extra)"})
            continue
        row = {"executor": executor, "runs": len(GRID["optimizer.lr"]) * SEEDS, "cores": os.cpu_count()}
        for jobs in (1, 2):
            if say is not None:
                say(f"timing the sweep on the {executor} executor with {jobs} worker(s)")
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):  # the sweep's summary table
                    result = sweep(SPEC, grid=GRID, seeds=SEEDS, jobs=jobs, executor=executor, out=Path(out),
                                   quiet=True)
                wall = time.perf_counter() - start
                train = [_train_seconds(r) for r in result.results]
            row[f"wall_{jobs}"] = round(wall, 2)
            row[f"run_{jobs}"] = round(sum(train) / len(train), 3)
            row[f"status_{jobs}"] = result.status
        row["speedup"] = round(row["wall_1"] / row["wall_2"], 2)
        row["run_ratio"] = round(row["run_2"] / row["run_1"], 2)
        rows.append(row)
    return rows


def _train_seconds(line: dict) -> float:
    """A run's own training time (summary.json's wall_seconds), read from its folder."""
    summary = json.loads((Path(line["run_dir"]) / "summary.json").read_text())
    return float(summary["wall_seconds"])


def format_sweep(rows: list[dict]) -> str:
    heading = ["8 spirals runs (60 epochs, 3x64 ReLU) as one sweep, 1 worker vs 2 (wall: the whole sweep; "
               "run: one run's training time)",
               f"{'executor':<9} {'1 worker':>9} {'2 workers':>10} {'speed-up':>9} {'run, 1':>8} {'run, 2':>8} "
               f"{'run 2/1':>8}"]
    return rows_table(heading, rows, "executor", 9, lambda r: (
        f"{r['executor']:<9} {r['wall_1']:>8.2f}s {r['wall_2']:>9.2f}s {r['speedup']:>8.2f}x "
        f"{r['run_1']:>7.3f}s {r['run_2']:>7.3f}s {r['run_ratio']:>7.2f}x"))
