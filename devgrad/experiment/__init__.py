"""Experiments: specs, the trainer, run folders, checkpoints, reports, and the run/resume commands.

A run goes Spec -> Plan -> Trainer + callbacks. Modules, in the order they build on each other:
``schema`` (generic YAML schema engine), ``spec`` (devgrad's spec: ``spec_keys``, ``spec_checks``,
``spec_types``), ``task`` (labels, outputs, loss), ``build`` (model, optimizer, schedule),
``plan`` (what a run is made of, computed once from its spec), ``checkpoint``, ``console``,
``rundir``, ``trainer`` (the epoch loop), ``callbacks`` (what happens around it), ``results``
(summary.json, test metrics, plots), ``resuming``, ``commands`` (run, resume, redraw),
``model_info``/``inputs``/``predict``/``export`` (use a trained run: load, predict, export),
``sweeps`` (grids of runs on a process pool or Dask, with ``grid``, ``sweep_point``,
``executors``, ``ranking``), ``search`` (an Optuna study over the same executors).
The names below are imported on first use, so that importing one module of this package (the
runner's task, a checkpoint reader) does not import the commands, sweeps and reports.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from devgrad.experiment.callbacks import Callback
    from devgrad.experiment.commands import redraw, resume, run
    from devgrad.experiment.plan import Plan, make_plan
    from devgrad.experiment.errors import RunError
    from devgrad.experiment.predict import TrainedModel, load
    from devgrad.experiment.rundir import RunResult
    from devgrad.experiment.spec import SpecError, resolve
    from devgrad.experiment.search import resume_sweep, sweep
    from devgrad.experiment.sweeps import SweepResult

# public name -> the module that defines it
_EXPORTS = {
    "Callback": "devgrad.experiment.callbacks", "Plan": "devgrad.experiment.plan",
    "make_plan": "devgrad.experiment.plan",
    "RunError": "devgrad.experiment.errors", "RunResult": "devgrad.experiment.rundir",
    "SpecError": "devgrad.experiment.spec", "SweepResult": "devgrad.experiment.sweeps",
    "TrainedModel": "devgrad.experiment.predict", "load": "devgrad.experiment.predict",
    "redraw": "devgrad.experiment.commands", "resolve": "devgrad.experiment.spec",
    # a sweep is a grid (sweeps) or a search (search, which hands grids to sweeps)
    "resume": "devgrad.experiment.commands", "resume_sweep": "devgrad.experiment.search",
    "run": "devgrad.experiment.commands", "sweep": "devgrad.experiment.search",
}

__all__ = ["Callback", "Plan", "RunError", "RunResult", "SpecError", "SweepResult", "TrainedModel", "load", "make_plan",
           "redraw", "resolve", "resume", "resume_sweep", "run", "sweep"]


def __getattr__(name: str):
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module 'devgrad.experiment' has no attribute {name!r}")
    value = getattr(_importlib.import_module(where), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
