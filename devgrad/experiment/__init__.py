"""Experiments: specs, the trainer, run folders, checkpoints, reports, and the run/resume commands.

Modules, in the order they build on each other: ``schema`` (generic YAML schema engine),
``spec`` (devgrad's spec), ``task`` (labels, outputs, loss), ``build`` (model, optimizer,
schedule), ``checkpoint``, ``console``, ``rundir``, ``trainer``, ``report`` (plots),
``commands`` (run, resume, redraw), ``model_info``/``inputs``/``predict``/``export`` (use a
trained run: load, predict, export), ``sweeps`` (grids of runs on a process pool or Dask).
"""

from devgrad.experiment.commands import redraw, resume, run
from devgrad.experiment.errors import RunError
from devgrad.experiment.predict import TrainedModel, load
from devgrad.experiment.rundir import RunResult
from devgrad.experiment.spec import SpecError, resolve
from devgrad.experiment.sweeps import SweepResult, resume_sweep, sweep

__all__ = ["RunError", "RunResult", "SpecError", "SweepResult", "TrainedModel", "load", "redraw", "resolve", "resume",
           "resume_sweep", "run", "sweep"]
