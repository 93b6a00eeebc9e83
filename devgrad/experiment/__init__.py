"""Experiments: specs, the runner, checkpoints and reports."""

from devgrad.experiment.runner import RunError, RunResult, resume, run
from devgrad.experiment.spec import SpecError, resolve

__all__ = ["RunError", "RunResult", "SpecError", "resolve", "resume", "run"]
