"""A search's pruning channel: a trial's run reports its monitored value after every epoch and
waits for the sweep's decision, through files in its run folder.

The run (on a local pool worker or a Dask worker) writes ``.pruning/report-<epoch>.json``; the
sweep's process (``Running.answer``) reports the value to Optuna's study, asks the pruner, and
writes ``.pruning/decision-<epoch>`` (``prune`` or ``continue``). The run stops at that epoch with
status ``pruned`` when told to. The files need the sweep's folder to be the workers' folder too
(one machine, or a shared file system), as a sweep's run folders do.
"""

from __future__ import annotations

import time
from pathlib import Path

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.sweep_point import run_point
from devgrad.io import atomic_write_text

__all__ = ["PruningReporter", "Running", "run_trial"]

POLL_SECONDS = 0.01
# How long a trial's run waits for the sweep's pruning decision before it trains on without one
# (the sweep's process died, or a worker far away cannot see the sweep folder).
DECISION_TIMEOUT_SECONDS = 120.0


class PruningReporter:
    """A trainer callback: after each epoch, hand the monitored value to the sweep and wait for its
    decision; ``"pruned"`` when the pruner says stop."""

    def __init__(self, folder: str, timeout: float = DECISION_TIMEOUT_SECONDS):
        self.folder = Path(folder)
        self.timeout = timeout
        self.unanswered = False  # the sweep did not answer once: the run trains on without asking again

    def __call__(self, trainer, epoch: int, row: dict) -> str | None:
        value = row.get(trainer.monitor)
        if value is None or self.unanswered:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        ckpt.write_json(self.folder / f"report-{epoch}.json", {"epoch": epoch, "value": float(value)})
        decision = self.folder / f"decision-{epoch}"
        deadline = time.monotonic() + self.timeout
        while not decision.exists():
            if time.monotonic() > deadline:
                trainer.log.warning("no pruning decision for epoch %d within %.0f s (is the sweep folder shared "
                                    "with this worker?): the run trains to its end unpruned", epoch, self.timeout)
                self.unanswered = True
                return None
            time.sleep(POLL_SECONDS / 2)
        return "pruned" if decision.read_text().strip() == "prune" else None


def run_trial(point: dict) -> dict:
    """Train one trial (``run_point`` with the pruning channel) and return its result line."""
    callbacks = [PruningReporter(point["pruning"])] if point.get("pruning") else []
    line = run_point(point, callbacks)
    if line["status"] == "pruned":
        line["error"] = None
    return {**line, "trial": point["index"], "params": point["overrides"]}



class Running:
    """A trial in flight: Optuna's live trial, the epochs it has reported, its pruning channel."""

    def __init__(self, optuna, study, trial, folder: Path):
        frozen = not isinstance(trial, optuna.trial.Trial)
        self.trial = optuna.trial.Trial(study, trial._trial_id) if frozen else trial
        self.number = trial.number
        self.reported = set(trial.intermediate_values) if frozen else set()
        self.folder = folder

    def answer(self) -> None:
        """Report the run's new per-epoch values to the study and write the pruner's decisions."""
        if not self.folder.is_dir():
            return
        for report in self.folder.glob("report-*.json"):
            epoch = int(report.stem.split("-")[1])
            decision = self.folder / f"decision-{epoch}"
            if decision.exists():
                continue
            if epoch not in self.reported:  # a run resumed from its checkpoint may report an epoch again
                self.trial.report(ckpt.read_json(report)["value"], epoch)
                self.reported.add(epoch)
            atomic_write_text(decision, "prune" if self.trial.should_prune() else "continue")
