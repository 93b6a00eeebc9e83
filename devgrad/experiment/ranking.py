"""A sweep's runs ranked by the monitored metric: its value per run, the order, and the tables
written from them (``results.csv``, ``summary.txt``, ``sweep.json``)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import yaml

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.rundir import now
from devgrad.io import atomic_write_text

__all__ = ["monitor_of", "monitor_of_spec", "ranked", "summary_table", "unmeasured", "unmeasured_note", "value",
           "write_tables"]


def monitor_of_spec(spec: dict) -> tuple[str, str]:
    """The metric a spec's runs are judged by and its direction (max or min): the one its runs
    watch, so a spec without a validation split is judged by the train metric, and says so."""
    es = spec["train"]["early_stopping"]
    monitor = es["monitor"]
    if monitor.startswith("val_") and not (spec.get("data") or {}).get("split", {}).get("val", 0.15):
        monitor = "train_" + monitor[len("val_"):]  # as the trainer does: there is no validation metric
    mode = es["mode"] if es["mode"] != "auto" else ("max" if monitor.endswith(("accuracy", "r2")) else "min")
    return monitor, mode


def monitor_of(sweep_dir: Path) -> tuple[str, str]:
    """The monitored metric and direction a sweep folder's sweep.yaml records."""
    resolved = yaml.safe_load((Path(sweep_dir) / "sweep.yaml").read_text())
    return tuple(resolved["monitor"])


def value(line: dict, monitor: str):
    """The run's value of ``monitor`` at its best epoch (its final epoch when none was best); None
    when it has none, never another metric in its place (a train value is not a val one)."""
    row = line.get("best") or line.get("final") or {}
    found = row.get(monitor)
    return found if isinstance(found, (int, float)) and math.isfinite(found) else None


def unmeasured(results: list, monitor: str) -> list[int]:
    """The runs that trained (they have an epoch's row) but never measured ``monitor``: a run
    without a validation split has no val_ metrics."""
    return [r["index"] for r in results if (r.get("best") or r.get("final")) and
            monitor not in (r.get("best") or r.get("final"))]


def unmeasured_note(results: list, monitor: str, shown_as: str) -> str | None:
    """The note that explains the runs without a value under the ``monitor`` heading (``shown_as``
    says how a table shows them), or None when every run that trained measured it."""
    runs = sorted(unmeasured(results, monitor))
    if not runs:
        return None
    which = ", ".join(str(i) for i in runs)
    why = " (no validation split)" if monitor.startswith("val_") else ""
    return (f"note: run{'s' if len(runs) > 1 else ''} {which} measured no {monitor}{why}, shown as {shown_as}: "
            f"listed after the ranked runs, never ranked by another metric")


def ranked(results: list, monitor: str, mode: str) -> list:
    """The one order of a sweep's runs, which every table, page and ``SweepResult.best`` use:
    completed runs first, best monitored value first, runs without a value after them; runs that
    tie keep the order of their index (never the order they finished in)."""
    def key(r):
        v = value(r, monitor)
        return (r["status"] != "completed", v is None, (-v if mode == "max" else v) if v is not None else 0,
                r["index"])

    return sorted(results, key=key)


def _write_csv(sweep_dir: Path, results: list, monitor: tuple) -> None:
    name, mode = monitor
    keys = sorted({k for r in results for k in r["overrides"]} - {"seed"})  # a varied seed: the seed column
    test_keys = sorted({k for r in results for k in (r.get("test") or {})})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", *keys, "seed", "status", f"best_{name}", "final_train_loss", *test_keys,
                     "wall_seconds", "worker", "run_dir", "error"])
    for r in ranked(results, name, mode):
        writer.writerow([r["index"], *(json.dumps(r["overrides"].get(k)) for k in keys), r["seed"], r["status"],
                         value(r, name), (r.get("final") or {}).get("train_loss"),
                         *((r.get("test") or {}).get(k) for k in test_keys), r["wall_seconds"], r["worker"],
                         r["run_dir"], r["error"] or ""])
    atomic_write_text(sweep_dir / "results.csv", buffer.getvalue())


def summary_table(results: list, monitor: tuple) -> str:
    """The runs as a text table, best first."""
    name, mode = monitor
    lines = [f"{'#':>4}  {'status':<9} {name:>12}  {'seconds':>7}  overrides (seed)"]
    for r in ranked(results, name, mode):
        v = value(r, name)
        overrides = ", ".join(f"{k}={json.dumps(x)}" for k, x in r["overrides"].items()) or "(base)"
        lines.append(f"{r['index']:>4}  {r['status']:<9} {'-' if v is None else f'{v:.4f}':>12}  "
                     f"{r['wall_seconds'] or 0:>7.2f}  {overrides} (seed {r['seed']})")
    note = unmeasured_note(results, name, "-")
    return "\n".join([*lines, *([note] if note else [])])


def write_tables(sweep_dir: Path, results: list, total: int, monitor: tuple, status: str,
                 plots: list | None = None) -> str:
    """results.csv, summary.txt and sweep.json for ``results`` (the newest line of each run);
    returns the summary table."""
    _write_csv(sweep_dir, results, monitor)
    summary = summary_table(results, monitor)
    atomic_write_text(sweep_dir / "summary.txt", summary + "\n")
    ckpt.write_json(sweep_dir / "sweep.json", {"status": status, "runs": total, "finished": len(results),
                                               "completed": sum(r["status"] == "completed" for r in results),
                                               "ended": now(), "plots": plots or []})
    return summary
