"""``devgrad bench --search``: a TPE study with the median pruner against a grid, and what MLflow
tracking costs a run.

On ``digits`` (scikit-learn's 8x8 images, 30 epochs, plots off): a 24-point grid over the
learning rate (6 values) and the hidden width (4) against a 24-trial TPE study over the same
ranges with the median pruner, both with 2 workers on the local pool. Reported: the test
accuracy of the run each picks (best ``val_loss``), the best test accuracy of any of its runs,
the pruned trials, and the wall time of the whole sweep.

``devgrad bench --tracking`` (and the end of ``--search``): what MLflow tracking (a local SQLite
store in a temporary folder) costs a ``spirals`` run. One machine's noise (other processes, CPU
frequency, BLAS threads) moves a run's time by more than the cost, so one pair of runs tells
nothing: the same spec runs untracked and tracked in pairs, in one process, the order alternating
(off-on, on-off, ...) so that a drift in speed falls on both, after a warm-up pair that is not
counted (imports, MLflow's database made). Reported: the median seconds per epoch of each, the
median of the pairs' ratios (tracked / untracked ``wall_seconds``) as the overhead, and the
lowest and highest pair's ratio.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from devgrad.bench.report import rows_table
from devgrad.experiment.commands import run
from devgrad.experiment.search import sweep
from devgrad.experiment.tracking_service import tracker_cpu_seconds

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


def search_bench(say=None, tracking_rounds: int = 3) -> list[dict]:
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
    rows.append(tracking_overhead(tracking_rounds, say))
    return rows


def tracking_overhead(rounds: int = 5, say=None) -> dict:
    """The spirals spec untracked and tracked, ``rounds`` pairs after a warm-up pair, the order
    alternating: median seconds per epoch of each, and the pairs' ratios (tracked / untracked)."""
    epochs = SPIRALS["train"]["epochs"]
    pairs = []
    with tempfile.TemporaryDirectory() as out:
        for index in range(rounds + 1):  # the first pair warms up and is not counted
            if say is not None:
                say(f"timing spirals runs without and with MLflow tracking: "
                    f"{'warm-up pair' if index == 0 else f'pair {index} of {rounds}'}")
            order = (False, True) if index % 2 == 0 else (True, False)
            seconds = {tracked: _timed_run(Path(out), tracked) for tracked in order}
            if index:
                pairs.append((seconds[False], seconds[True]))
    ratios = [on[0] / off[0] for off, on in pairs]
    calls = [on[1] / off[1] for off, on in pairs]
    cpu = [on[2] / off[2] for off, on in pairs if off[2] > 0]
    tracker = [on[3] for _, on in pairs if on[3] is not None]
    return {"sweep": "tracking", "rounds": rounds,
            "per_epoch_off": round(statistics.median(off[0] for off, _ in pairs) / epochs, 4),
            "per_epoch_on": round(statistics.median(on[0] for _, on in pairs) / epochs, 4),
            "overhead_percent": round(100 * (statistics.median(ratios) - 1), 1),
            "ratio_low": round(min(ratios), 3), "ratio_high": round(max(ratios), 3),
            "call_overhead_percent": round(100 * (statistics.median(calls) - 1), 1),
            "cpu_overhead_percent": round(100 * (statistics.median(cpu) - 1), 1) if cpu else None,
            "tracker_cpu_seconds": round(statistics.median(tracker), 3) if tracker else None}


def _timed_run(out: Path, tracked: bool) -> tuple[float, float, float, float | None]:
    """One spirals run, tracked to a SQLite store in ``out`` or not: its ``wall_seconds`` (the
    training), the whole call's seconds (with the MLflow run opened and its uploads finished), the
    CPU seconds of this process in the call, and those of the tracker process (None: not known).
    On a machine whose cores are all busy, a run's seconds move with the others' work; its CPU
    seconds much less."""
    spec = dict(SPIRALS)
    if tracked:
        spec["tracking"] = {"mlflow": {"uri": f"sqlite:///{out / 'mlflow.db'}", "experiment": "bench"}}
    here = os.getcwd()
    os.chdir(out)  # a local store keeps its artifacts in ./mlruns
    try:
        tracker = tracker_cpu_seconds()
        start, cpu = time.perf_counter(), time.process_time()
        wall = run(spec, out=out / "runs", quiet=True).summary["wall_seconds"]
        call, cpu = time.perf_counter() - start, time.process_time() - cpu
        after = tracker_cpu_seconds()
        return wall, call, cpu, (after - (tracker or 0.0) if tracked and after is not None else None)
    finally:
        os.chdir(here)


def format_tracking(rows: list[dict]) -> str:
    """The tracking row as a line of text."""
    lines = []
    for r in rows:
        if r["sweep"] == "tracking":
            lines.append(f"spirals run, {SPIRALS['train']['epochs']} epochs, {r['rounds']} interleaved pairs: "
                         f"{r['per_epoch_off'] * 1000:.1f} ms/epoch untracked, {r['per_epoch_on'] * 1000:.1f} ms/epoch "
                         f"with MLflow tracking (medians); tracked/untracked wall_seconds: median "
                         f"{r['overhead_percent']:+.1f}%, pairs {r['ratio_low']:.3f}-{r['ratio_high']:.3f}; "
                         f"the whole run call, uploads included: median {r['call_overhead_percent']:+.1f}%"
                         + _cpu_text(r))
    return "\n".join(lines)


def _cpu_text(row: dict) -> str:
    text = ""
    if row.get("cpu_overhead_percent") is not None:
        text += f"; CPU seconds of the training process: median {row['cpu_overhead_percent']:+.1f}%"
    if row.get("tracker_cpu_seconds") is not None:
        text += f"; the tracker process: {row['tracker_cpu_seconds']:.2f} s of CPU per run (median)"
    return text


def format_search(rows: list[dict]) -> str:
    heading = ["digits (30 epochs): a 24-point grid (lr x hidden) vs a 24-trial TPE study with the median pruner, "
               "2 workers (picked: the test accuracy of the run with the best val_loss)",
               f"{'sweep':<11} {'runs':>5} {'pruned':>7} {'picked':>8} {'best':>8} {'wall':>9}"]
    table = rows_table(heading, [r for r in rows if r["sweep"] != "tracking"], "sweep", 11, lambda r: (
        f"{r['sweep']:<11} {r['runs']:>5} {r['pruned']:>7} {_pct(r['picked_test_accuracy']):>8} "
        f"{_pct(r['best_test_accuracy']):>8} {r['wall_seconds']:>8.1f}s"))
    tracking = format_tracking(rows)
    return table + ("\n" + tracking if tracking else "")


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
