"""devgrad's experiment spec: from a YAML file, a dict or a Spec to a checked, typed ``Spec``
(``resolve``).

The spec is four modules, one job each: ``devgrad.experiment.schema`` is the generic
machinery (YAML with line numbers, the validator, ``--set`` overrides); ``spec_keys`` holds
``SCHEMA`` and the vocabulary it takes from ``devgrad.nn`` and ``devgrad.optim``;
``spec_checks`` checks a loaded spec as a whole (``validate``); ``spec_types`` holds the
typed result. This module loads, applies overrides, validates and types, and re-exports the
names the rest of devgrad reads.
"""

from __future__ import annotations

import copy
from pathlib import Path

from devgrad import optim  # noqa: F401 - read as spec.optim by the spec reference's checks
from devgrad.experiment.examples import spec_file
from devgrad.experiment.schema import Loaded, SpecError, apply_overrides, load_yaml, to_yaml
from devgrad.experiment.spec_checks import validate
from devgrad.experiment.spec_keys import (
    ACTIVATIONS, CLASSIFICATION_METRICS, FILE_SOURCES, INITS, LOSSES, METRICS, MONITORS, NAME_BLOCKS,
    REGRESSION_METRICS, SCHEDULE_ALIASES, SCHEMA, SKLEARN, SYNTHETIC, TASKS, loss_options, optimizer_options,
    schedule_options,
)
from devgrad.experiment.spec_types import (
    Checkpointing, Choice, DataSpec, EarlyStopping, LossSpec, ModelSpec, PlotsSpec, Spec, Split, TrainSpec,
)

__all__ = [
    "ACTIVATIONS", "CLASSIFICATION_METRICS", "FILE_SOURCES", "INITS", "LOSSES", "METRICS", "MONITORS", "NAME_BLOCKS",
    "REGRESSION_METRICS", "SCHEDULE_ALIASES", "SCHEMA", "SKLEARN", "SYNTHETIC", "TASKS", "Checkpointing", "Choice",
    "DataSpec", "EarlyStopping", "LossSpec", "ModelSpec", "PlotsSpec", "Spec", "SpecError", "Split", "TrainSpec",
    "loss_options", "optimizer_options", "resolve", "schedule_options", "to_yaml", "validate",
]


def resolve(spec_or_path, overrides=(), check_files: bool = True) -> Spec:
    """A spec file path or a dict (a Spec too) -> the validated, resolved, typed Spec."""
    if isinstance(spec_or_path, Spec):
        spec_or_path = spec_or_path.to_dict()
    if isinstance(spec_or_path, Loaded):  # already read (a sweep's base spec, its lines kept for messages)
        loaded = spec_or_path
        source = str(loaded.path) if loaded.path is not None else "spec"
    elif isinstance(spec_or_path, dict):
        loaded = Loaded(copy.deepcopy(spec_or_path))
        source = "spec"
    else:
        path = spec_file(spec_or_path)  # a path, else a spec devgrad ships, by name
        loaded = load_yaml(path)
        source = str(path)
    loaded = apply_overrides(loaded, overrides, SCHEMA, NAME_BLOCKS)
    spec = validate(loaded, source=source, check_files=check_files)
    base = loaded.path.parent.resolve() if loaded.path is not None else Path.cwd()
    for key in ("path", "images", "labels"):
        value = spec["data"].get(key)
        if value is not None and not Path(value).is_absolute():
            # Stored absolute, so the run folder's config.yaml works from anywhere.
            spec["data"][key] = str((base / value).resolve())
    return Spec.from_dict(spec)
