"""What a run folder must hold to be resumed, read before anything in it changes: its meta.json,
its last checkpoint, and a config.yaml that still describes the training the run started.

A run records the spec it started with in meta.json ("spec"). A resume trains the rest of the
run from config.yaml; an edit there that changes what the training computes (the optimizer,
its learning rate, the loss, the batch size, the schedule, the data, the model, the seed, ...)
would silently splice two different trainings into one run, so it is refused, naming each key.
Keys that do not change the computation may differ: the run's name and description, the
device (``--device``), BLAS threads, step capture (bit-identical either way), checkpoint
cadence, plots and tracking.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.errors import RunError
from devgrad.experiment.schema import REQUIRED, Field, dotted
from devgrad.experiment.spec import SCHEMA, Spec, optimizer_options, schedule_options

__all__ = ["changed_training", "check_unchanged", "killed_segment", "read_meta", "read_state"]

# Dotted keys (and the blocks under them) that leave what a resumed run computes unchanged.
FREE_TO_CHANGE = ("name", "description", "device", "plots", "tracking", "train.threads", "train.capture",
                  "train.checkpoint")
_MISSING = object()


def _free(key: str) -> bool:
    return any(key == free or key.startswith(free + ".") for free in FREE_TO_CHANGE)


def changed_training(started: dict, now: dict) -> list[tuple[str, object, object]]:
    """(key, value the run started with, value now) for each training-relevant key that differs."""
    before, after = dotted(started), dotted(now)
    # Lists and tuples compare as JSON holds them (meta.json has no tuples).
    after = json.loads(json.dumps(after))
    changed = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        if old is _MISSING and new == _default(key, now):
            continue  # a key this devgrad added since the run started, at the default it trains with
        if old != new and not _free(key):
            changed.append((key, old, new))
    return changed


def _default(key: str, spec: dict):
    """The default of dotted ``key`` in a spec like ``spec`` (an option of its optimizer or
    schedule by that block's name), or _MISSING."""
    block, _, option = key.partition(".")
    if block in ("optimizer", "schedule") and option and "." not in option:
        name = spec[block]["name"]
        if block == "optimizer":
            defaults = optimizer_options(name)
        else:
            defaults = {} if name == "none" else schedule_options(name)
        if option not in defaults:
            return _MISSING
        return json.loads(json.dumps(defaults[option]))
    node = SCHEMA
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return json.loads(json.dumps(node.default)) if isinstance(node, Field) and node.default is not REQUIRED \
        else _MISSING


def _shown(value) -> str:
    return "(not set)" if value is _MISSING else json.dumps(value)


def check_unchanged(run_dir: Path, meta: dict, spec: Spec) -> None:
    """A RunError naming every training-relevant key of ``spec`` (config.yaml now) that differs
    from the spec the run started with (meta.json's "spec"); nothing when the run predates that
    record."""
    started = meta.get("spec")
    if not isinstance(started, dict):
        return
    changed = changed_training(started, spec.to_dict())
    if not changed:
        return
    edits = "; ".join(f"{key}: {_shown(old)} -> {_shown(new)}" for key, old, new in changed)
    raise RunError(f"cannot resume {run_dir}: its config.yaml was edited after the run started, and the edit "
                   f"changes what the rest of the run would compute ({edits}). A run trains one spec from its "
                   f"first epoch to its last: put config.yaml back as it was to resume, or train the edited spec "
                   f"in a new run folder: devgrad run {run_dir / 'config.yaml'}")


def read_meta(run_dir: Path) -> dict:
    """meta.json (empty when missing), or a RunError when it cannot be read."""
    path = run_dir / "meta.json"
    try:
        return ckpt.read_json(path) if path.exists() else {}
    except (ValueError, OSError) as exc:
        raise RunError(f"cannot resume {run_dir}: {path} is damaged ({exc}); it records whether a process is "
                       f"still training the run. If none is, move it aside (mv {path} {path}.damaged) and resume "
                       "again") from None


def read_state(last: Path, run_dir: Path) -> dict:
    """The state in last.npz, or a RunError that says what to do when the file is damaged."""
    try:
        return ckpt.load_checkpoint(last)
    except ckpt.DamagedCheckpointError as exc:
        raise RunError(f"cannot resume {run_dir}: {exc}. Move the damaged file aside (mv {last} {last}.damaged) "
                       f"and run 'devgrad resume {run_dir}' again to retrain it from the first epoch (the same "
                       f"seeds give the same run), or start afresh with 'devgrad run {run_dir / 'config.yaml'}'"
                       ) from None


def killed_segment(run_dir: Path, meta: dict) -> dict:
    """The segment of a killed run, which could not write its time: from its start to the last
    file it wrote (an epoch's metrics, a checkpoint, a log line). Read before the resuming process
    writes anything in the folder, or its own writes would end the killed segment."""
    started = (meta.get("resumed") or [meta.get("started")])[-1]
    files = [run_dir / "train.log", run_dir / "metrics.jsonl", run_dir / "checkpoints" / "last.npz"]
    last_write = max((f.stat().st_mtime for f in files if f.exists()), default=None)
    try:
        wall = max(0.0, last_write - datetime.fromisoformat(started).timestamp()) if last_write else 0.0
    except (TypeError, ValueError):  # a meta.json without a readable start
        wall = 0.0
    return {"started": started, "wall_seconds": round(wall, 3), "ended": "killed (timed to its last write)"}
