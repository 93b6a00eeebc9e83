"""model.json: what a run folder must hold, beside its weights, to predict from new data.

The architecture, dtype and task, the input features (names, order, standardisation), the
class values in output order (their original type kept: ints, floats, strings, bools) and, for
a regression, the target's scaling. Written with the run, atomically, before any checkpoint;
read by ``devgrad.experiment.load``.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np

from devgrad.experiment.errors import RunError
from devgrad.io import atomic_write_text

FILE_NAME = "model.json"
FORMAT = 1
# The type tags class values carry in model.json, and the NumPy dtype each comes back as.
CLASS_DTYPES = {"int": np.int64, "float": np.float64, "bool": np.bool_, "str": np.str_}
REQUIRED = ("format", "task", "dtype", "architecture", "features", "standardize", "output")


def feature_names(data: dict, n_features: int) -> list[str]:
    """The input columns a run was trained on, in order: a CSV's header without the target
    column, else ``x0 .. x{n-1}``."""
    if data.get("source") == "csv":
        with open(data["path"], newline="", encoding="utf-8-sig") as fh:  # a BOM is not part of a name
            header = [h.strip() for h in next(csv.reader(fh))]
        names = [h for h in header if h != data["target"]]
        if len(names) == n_features:
            return names
    return [f"x{i}" for i in range(n_features)]


def tag_classes(classes: list) -> dict:
    """Class values as JSON with a type tag, so that they come back with their own type. Text
    labels that are all plain integers (``"0"``, ``"12"``: a generator's) are ints; a CSV's
    numeric labels come as numbers already."""
    values = list(classes)
    if all(isinstance(c, bool | np.bool_) for c in values):
        return {"type": "bool", "values": [bool(c) for c in values]}
    if all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in values):
        return {"type": "int", "values": [int(c) for c in values]}
    if all(isinstance(c, int | float | np.integer | np.floating) for c in values):
        return {"type": "float", "values": [float(c) for c in values]}
    texts = [str(c) for c in values]
    if all(_plain_int(t) for t in texts) and len({int(t) for t in texts}) == len(texts):
        return {"type": "int", "values": [int(t) for t in texts]}
    return {"type": "str", "values": texts}


def _plain_int(text: str) -> bool:
    """Is ``text`` an integer written the one way ``str(int)`` writes it (so it reads back the same)?"""
    try:
        return str(int(text)) == text
    except ValueError:
        return False


def class_array(tagged: dict) -> np.ndarray:
    """The class values of ``tag_classes`` as a NumPy array of their own dtype."""
    return np.array(tagged["values"], dtype=CLASS_DTYPES[tagged["type"]])


def describe(spec, splits, task) -> dict:
    """model.json's content for a run of ``spec`` on ``splits`` with ``task``."""
    m = spec.model
    sizes = [splits.n_features, *m.hidden, task.out_features]
    standardize = None
    # IDX pixels were divided by 255 before the standardisation: (raw/255 - mean)/std is
    # (raw - 255·mean)/(255·std), so new rows are given in the file's own pixel values.
    pixels = _pixel_scale(spec.data.to_dict())
    if splits.mean is not None:
        standardize = {"mean": [float(v) * pixels for v in splits.mean], "std": [float(v) * pixels for v in splits.std]}
    elif pixels != 1.0:
        standardize = {"mean": [0.0] * splits.n_features, "std": [pixels] * splits.n_features}
    if task.regression:
        output = {"kind": "value", "target_mean": float(splits.y_mean), "target_std": float(splits.y_std)}
    else:
        output = {"kind": "classes", "classes": tag_classes(splits.classes), "loss": task.loss,
                  "n_classes": task.n_classes, "threshold": task.threshold}
    return {
        "format": FORMAT, "task": task.kind, "dtype": str(np.dtype(spec.dtype)),
        "architecture": {"type": "MLP", "sizes": sizes, "activation": m.activation, "bias": m.bias,
                         "dropout": m.dropout, "norm": m.norm},
        "features": {"names": feature_names(spec.data.to_dict(), splits.n_features),
                     "target": spec.data.target if spec.data.source == "csv" else None},
        "standardize": standardize, "output": output,
    }


def _pixel_scale(data: dict) -> float:
    """255 for IDX images of unsigned bytes (which the data reader scales to [0, 1]), else 1."""
    if data.get("source") != "idx":
        return 1.0
    opener = gzip.open if str(data["images"]).endswith(".gz") else open
    with opener(data["images"], "rb") as fh:
        header = fh.read(3)
    return 255.0 if len(header) == 3 and header[2] == 0x08 else 1.0


def write(run_dir: Path, info: dict) -> None:
    """model.json into ``run_dir``, atomically (strict JSON: a non-finite number is a bug here)."""
    atomic_write_text(Path(run_dir) / FILE_NAME, json.dumps(info, indent=2, allow_nan=False) + "\n")


def record(run_dir: Path, info: dict) -> None:
    """model.json for a run folder: written when the folder has none; when it has one (a resumed
    or redrawn run), kept as it is, since it describes the data the saved weights were trained on.
    A folder whose data now reads differently (a data file edited since the run started) is a
    RunError naming what changed, never a silent rewrite beside the old weights."""
    run_dir = Path(run_dir)
    path = run_dir / FILE_NAME
    if not path.exists():
        write(run_dir, info)
        return
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = None  # damaged: the first segment's record is lost, so this one is written again
    if not isinstance(kept, dict):
        write(run_dir, info)
        return
    now = json.loads(json.dumps(info, allow_nan=False))
    changed = [key for key in sorted(set(now) | set(kept)) if now.get(key) != kept.get(key)]
    if changed:
        raise RunError(f"{path} no longer matches this run's data and spec ({', '.join(changed)} differ): the data "
                       "file or config.yaml changed since the run started, so its saved weights would be paired "
                       "with other features, scalings or classes. Restore the original data, or train a new run "
                       "on the new data (devgrad run SPEC)")


def read(run_dir: Path) -> dict:
    """model.json of a run folder, checked; a folder without it (or with a damaged one) is a
    RunError that says what is missing and how to get it."""
    run_dir = Path(run_dir)
    path = run_dir / FILE_NAME
    redo = f"run its spec again with this devgrad, which writes it: devgrad run {run_dir / 'config.yaml'}"
    if not _completed(run_dir):  # an unfinished run can be resumed, which writes it too
        redo = f"resume it (devgrad resume {run_dir}) or {redo}"
    if not path.exists():
        raise RunError(f"{run_dir} has no {FILE_NAME}: the architecture, feature names, input standardisation, "
                       f"class values and target scaling that prediction needs are not stored; {redo}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"{path} cannot be read ({exc}); {redo}") from None
    missing = [k for k in REQUIRED if not isinstance(info, dict) or k not in info]
    if missing:
        raise RunError(f"{path} lacks {', '.join(missing)}; {redo}")
    if info["format"] != FORMAT:
        raise RunError(f"{path} is format {info['format']}, this devgrad reads format {FORMAT}; {redo}")
    scale = info["standardize"]
    if scale is not None and not all(math.isfinite(v) and v != 0 for v in scale["std"]):
        raise RunError(f"{path}: the input standardisation has a zero or non-finite std; {redo}")
    return info


def _completed(run_dir: Path) -> bool:
    try:
        return json.loads((run_dir / "meta.json").read_text(encoding="utf-8")).get("status") == "completed"
    except (OSError, ValueError, AttributeError):
        return False
