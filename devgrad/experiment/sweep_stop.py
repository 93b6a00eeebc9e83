"""A sweep stopped by Ctrl-C: no queued run starts, the runs in flight stop with a checkpoint,
their lines are written, and the message says what finished and how to continue."""

from __future__ import annotations

import contextlib
from pathlib import Path

from devgrad.experiment.sweep_point import NOT_STARTED, STOP_FILE
from devgrad.experiment.sweepdir import append_line

__all__ = ["INTERRUPT_GRACE_SECONDS", "interrupt", "interrupted_message"]

# How long a Ctrl-C'd sweep waits for its runs in flight to checkpoint and report: a run on Dask
# stops at the end of its epoch, one on the local pool at once. What has not reported by then is
# ended, and resumes from its last checkpoint; the sweep is gone within 2 s of the Ctrl-C.
INTERRUPT_GRACE_SECONDS = 1.0


def interrupt(sweep_dir: Path, runner, futures: list, results: list) -> None:
    """Ctrl-C: no queued run starts (cancelled, and the stop file turns away any a worker already
    holds), runs in flight are stopped (they checkpoint), and the lines of those that report
    within the grace period are written, with their real wall time."""
    with contextlib.suppress(OSError):
        (sweep_dir / STOP_FILE).touch()
    runner.interrupt(futures)
    recorded = {r["index"] for r in results}
    for line in runner.collect(futures, INTERRUPT_GRACE_SECONDS):
        if line["status"] == NOT_STARTED or line["index"] in recorded:
            continue
        append_line(sweep_dir / "results.jsonl", line)
        results.append(line)


def interrupted_message(sweep_dir: Path, results: list, points: list, total: int) -> str:
    """What an interrupted sweep says: what finished, what stopped, what never started, and the
    command that continues it."""
    stopped = sum(r["status"] == "stopped" for r in results)
    recorded = {r["index"] for r in results}
    unrecorded = [p for p in points if p["index"] not in recorded]
    started = sum(Path(p["run_dir"]).exists() for p in unrecorded)  # still stopping: no line yet
    cut = f", {started} cut short without a line (they resume from their last checkpoint)" if started else ""
    return (f"sweep interrupted: {len(results) - stopped}/{total} runs finished, {stopped} stopped with a checkpoint"
            f"{cut}, {len(unrecorded) - started} not started; continue with: devgrad sweep --resume {sweep_dir}")
