"""Use what a run trained: ``load(run_dir)`` gives a ``TrainedModel`` that predicts class values
(their own type, text included) or values in the target's units from new rows, and
``predict_file`` is ``devgrad predict``: predictions (and metrics, when the target is there)
written beside the run."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from devgrad import nn
from devgrad.backend import default_device
from devgrad.backend import device as resolve_device
from devgrad.core import Tensor, no_grad
from devgrad.data import DataError
from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment import inputs, model_info
from devgrad.experiment.build import model_from_info
from devgrad.experiment.errors import RunError
from devgrad.experiment.rundir import why_not_completed
from devgrad.experiment.spec import resolve
from devgrad.io import atomic_write, atomic_write_text

CHECKPOINTS = ("best", "last")
BATCH_ROWS = 65536  # rows per forward pass: bounded memory for any number of rows


class TrainedModel:
    """A run's model with what it was trained on: ``predict`` / ``predict_proba`` from raw rows."""

    def __init__(self, model: nn.Module, info: dict, spec, device, epoch: int, run_dir: Path, checkpoint: Path):
        self.model = model
        self.info = info
        self.spec = spec
        self.device = device
        self.epoch = epoch
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.task = info["task"]
        self.feature_names = list(info["features"]["names"])
        output = info["output"]
        self.classes = model_info.class_array(output["classes"]) if self.task == "classification" else None
        scale = info["standardize"]
        self.mean = np.array(scale["mean"], dtype=np.float64) if scale else None
        self.std = np.array(scale["std"], dtype=np.float64) if scale else None

    def class_values(self) -> np.ndarray:
        """The classes, in the order of the model's outputs (a classification's only)."""
        if self.classes is None:
            raise RunError(f"{self.run_dir} is a regression, which has no classes")
        return self.classes

    def __repr__(self) -> str:
        return (f"TrainedModel({self.task}, {len(self.feature_names)} features, epoch {self.epoch}, "
                f"{self.checkpoint.name} of {self.run_dir}, on {self.device})")

    @property
    def target(self) -> str:
        """The name of the target column in a table or CSV: the spec's ``data.target``, else ``y``
        (the name an NPZ file gives it)."""
        return self.info["features"]["target"] or "y"

    def inputs(self, X) -> inputs.Inputs:
        """``X`` read and checked: the model's feature columns in order, and the target if present."""
        return inputs.read(X, self.feature_names, self.target)

    def outputs(self, X) -> np.ndarray:
        """The model's raw outputs (n, outputs) for rows ``X`` (float64 on the host): logits, or
        the standardised regression value."""
        return self._forward(X.X if isinstance(X, inputs.Inputs) else self.inputs(X).X)

    @no_grad()
    def _forward(self, X: np.ndarray) -> np.ndarray:
        if self.mean is not None and self.std is not None:  # both or neither: the run's standardize
            X = (X - self.mean) / self.std
        with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf: its outputs say so
            X = X.astype(self.info["dtype"])
        out = []
        with self.device.activate():
            for start in range(0, len(X), BATCH_ROWS):
                batch = Tensor._make(self.device.put(X[start:start + BATCH_ROWS]), self.device)
                result = self.model(batch)
                out.append(self.device.to_host(result.data).astype(np.float64).reshape(len(batch.data), -1))
        return np.concatenate(out) if out else np.zeros((0, self.model.sizes[-1]))

    def predict(self, X) -> np.ndarray:
        """Class values (a NumPy array of the labels' dtype) or values in the target's units."""
        return self.predict_outputs(self.outputs(X))

    def predict_outputs(self, z: np.ndarray) -> np.ndarray:
        """``predict`` from raw outputs: the trainer's rule (argmax; one output: above the threshold)."""
        out = self.info["output"]
        self._check_finite(z)
        if self.task == "regression":
            return z[:, 0] * out["target_std"] + out["target_mean"]
        index = z.argmax(axis=1) if z.shape[1] > 1 else (z[:, 0] > out["threshold"]).astype(np.int64)
        return self.class_values()[index]

    def _check_finite(self, z: np.ndarray) -> None:
        """Outputs inf or NaN give no prediction (an argmax over NaN is class 0, silently): an error."""
        bad = ~np.isfinite(z).all(axis=1)
        if bad.any():
            raise RunError(f"the model's outputs are inf or NaN for {int(np.count_nonzero(bad))} of {len(z)} rows "
                           f"(the first: row {int(np.flatnonzero(bad)[0])}, counting from 0), so they have no "
                           "prediction; such rows lie far outside the training data, or the weights "
                           f"({self.checkpoint}) are too large")

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of ``classes``."""
        if self.task != "classification":
            raise RunError(f"predict_proba: {self.run_dir} is a regression, which has no class probabilities; "
                           "use predict (values in the target's units)")
        self._refuse_margins("predict_proba")
        return self.proba_outputs(self.outputs(X))

    def _refuse_margins(self, what: str, instead: str = "use outputs(X) for the margins") -> None:
        """A hinge-loss model's outputs are margins, not calibrated probabilities (as scikit-learn's
        hinge-loss classifiers have no ``predict_proba``): refused, rather than a sigmoid of a margin."""
        if self.info["output"]["loss"] == "hinge":
            raise RunError(f"{what}: {self.run_dir} was trained with loss: hinge, whose outputs are margins, not "
                           f"probabilities (class 1 where the margin is above 0); {instead}, or train with "
                           "loss: logistic or bce for probabilities")

    def proba_outputs(self, z: np.ndarray) -> np.ndarray:
        """``predict_proba`` from raw outputs, in float64 (softmax; one output: its sigmoid, or the
        clipped value for an mse fit)."""
        self._check_finite(z)
        if z.shape[1] > 1:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        self._refuse_margins("predict_proba")
        flat = z[:, 0]
        if self.info["output"]["loss"] == "mse":
            p1 = np.clip(flat, 0.0, 1.0)
            return np.stack([1.0 - p1, p1], axis=1)
        # exp(-log(1 + exp(∓z))): each probability to full relative precision, no overflow
        return np.stack([np.exp(-np.logaddexp(0.0, flat)), np.exp(-np.logaddexp(0.0, -flat))], axis=1)


def load(run_dir, checkpoint: str = "best", device=None, quiet: bool = False) -> TrainedModel:
    """The model a run trained, from its folder: ``checkpoint`` "best" (falling back to "last",
    and saying so unless ``quiet``) or "last"; on ``device`` (default: devgrad's default device)."""
    run_dir = Path(run_dir)
    if checkpoint not in CHECKPOINTS:
        raise RunError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    if not (run_dir / "config.yaml").exists():
        what = "no such folder" if not run_dir.exists() else "no config.yaml in it"
        raise RunError(f"{run_dir} is not a run folder ({what}); pass the folder 'devgrad run' printed "
                       "(runs/<name>/<date-time>-<id>)")
    info = model_info.read(run_dir)
    path, note = _checkpoint_file(run_dir, checkpoint)
    if note and not quiet:
        print(f"devgrad: notice: {note}", file=sys.stderr, flush=True)
    state = _read_state(path, run_dir)
    dev = resolve_device(device) if device is not None else default_device()
    model = model_from_info(info["architecture"], info["dtype"], dev)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, ValueError, TypeError) as exc:
        raise RunError(f"{path} does not fit the model {run_dir / model_info.FILE_NAME} describes ({exc}); "
                       "the files are from different runs") from None
    model.eval()
    spec = resolve(run_dir / "config.yaml", check_files=False)
    return TrainedModel(model, info, spec, dev, int(state.get("epoch", 0)), run_dir, path)


def _checkpoint_file(run_dir: Path, checkpoint: str) -> tuple[Path, str | None]:
    """The checkpoint file to load, and a notice when "best" fell back to "last"."""
    folder = run_dir / "checkpoints"
    best, last = folder / "best.npz", folder / "last.npz"
    if checkpoint == "best" and best.exists():
        return best, None
    if last.exists():
        note = None
        if checkpoint == "best":
            note = (f"{run_dir} has no best checkpoint (train.checkpoint.save_best off, or no epoch was "
                    "measured); using the last one, checkpoints/last.npz")
        return last, note
    why = why_not_completed(run_dir)
    raise RunError(f"{run_dir} has no checkpoint: the run stopped before its first one was written"
                   f"{f' ({why})' if why else ''}; resume it (devgrad resume {run_dir}) or run its spec again")


def _read_state(path: Path, run_dir: Path) -> dict:
    try:
        state = ckpt.load_checkpoint(path)
    except (RunError, ValueError) as exc:  # RunError names the file; a bare load error is named here
        other = "best" if path.stem == "last" else "last"
        what = str(exc) if str(path) in str(exc) else f"the checkpoint {path} cannot be read: {exc}"
        raise RunError(f"{what}. Use the other one (--checkpoint {other}, or checkpoint='{other}'), or run the "
                       f"spec again (devgrad run {run_dir / 'config.yaml'})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise RunError(f"{path} is not a devgrad run checkpoint (no model weights in it)")
    for name, value in state["model"].items():
        array = np.asarray(value)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            other = "best" if path.stem == "last" else "last"
            raise RunError(f"{path} holds weights that are inf or NaN ({name}): the run diverged before it was "
                           f"written, and nothing predicted from it would mean anything. Use the other one "
                           f"(--checkpoint {other}, or checkpoint='{other}'), or run the spec again with a lower "
                           "optimizer.lr")
    return state


# -- devgrad predict ---------------------------------------------------------------------------

def predict_file(run_dir, data, out=None, proba: bool = False, checkpoint: str = "best", device=None,
                 quiet: bool = False) -> tuple[Path, dict | None]:
    """``devgrad predict``: predictions for DATA (a CSV or NPZ file) as a CSV, one row per input
    row, at ``out`` (default RUN_DIR/predictions/<data-stem>.csv; never an existing file); and the
    task's metrics when DATA holds the target, also written beside it as JSON. Returns both."""
    data = Path(data)
    trained = load(run_dir, checkpoint=checkpoint, device=device, quiet=quiet)
    if proba and trained.task != "classification":
        raise RunError(f"--proba: {trained.run_dir} is a regression, which has no class probabilities; "
                       "leave out --proba (predictions are values in the target's units)")
    if proba:
        trained._refuse_margins("--proba", "leave out --proba")
    rows = trained.inputs(data)  # every check on the data before anything is written
    out = Path(out) if out is not None else Path(run_dir) / "predictions" / f"{data.stem}.csv"
    metrics_path = out.with_name(out.stem + ".metrics.json")
    for path in (out, metrics_path if rows.y is not None else None):
        if path is not None and path.exists():
            raise RunError(f"{path} already exists; predictions never overwrite a file: choose another --out")
    if out.parent.exists() and not out.parent.is_dir():
        raise RunError(f"--out {out}: {out.parent} is a file, not a folder")
    z = trained.outputs(rows)
    predictions = trained.predict_outputs(z)
    table = {"prediction": predictions}
    if proba:
        names = [str(name) for name in trained.class_values().tolist()]
        if "prediction" in names:  # a class of that name: every probability column is named proba_<class>
            names = [f"proba_{name}" for name in names]
        table.update(zip(names, trained.proba_outputs(z).T))
    metrics = metrics_of(trained, predictions, rows) if rows.y is not None else None
    for note in metric_notices(metrics, str(data)) if metrics is not None and not quiet else ():
        print(f"devgrad: notice: {note}", file=sys.stderr, flush=True)
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]  # folders this call creates
    try:
        atomic_write_text(out, _csv_text(table))
        if metrics is not None:
            atomic_write(metrics_path, (json.dumps(metrics, indent=2) + "\n").encode("utf-8"))
    except OSError:
        out.unlink(missing_ok=True)  # both files or neither, and no folder left behind empty
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return out, metrics


def metrics_of(trained: TrainedModel, predictions: np.ndarray, rows: inputs.Inputs) -> dict:
    """The task's metrics of ``predictions`` against the target that came with the data: accuracy;
    or mse, mae and r2 in the target's units. Rows whose target is empty are left out (their count
    is ``rows_without_target``); a classification's target classes the model never saw in training
    are listed in ``unseen_classes`` and count as wrong, as scikit-learn's accuracy counts them."""
    y = rows.y
    if y is None:
        raise DataError(f"{rows.where}: no target column, so there is nothing to score the predictions against")
    numeric = trained.task == "regression" or trained.classes is None or trained.classes.dtype.kind not in "USb"
    scored = ~_empty_targets(y, numeric)
    n = int(np.count_nonzero(scored))
    if n == 0:
        raise DataError(f"{rows.where}: every row's target is empty, so there is nothing to score the predictions "
                        "against; fill in the target column or leave it out")
    left_out = {"rows_without_target": len(y) - n} if n < len(y) else {}
    y, predictions = y[scored], predictions[scored]
    if trained.task == "classification" and trained.classes is not None:  # a classification has its classes
        values, known = _as_classes(y, trained.classes, rows.where)
        hits = values == (predictions.astype(str) if known.dtype.kind == "U" else predictions)
        unseen = sorted(set(values[~np.isin(values, known)].tolist()))
        return {"rows": n, "accuracy": float(np.count_nonzero(hits)) / n, **left_out,
                **({"unseen_classes": unseen} if unseen else {})}
    try:
        values = y.astype(np.float64)
    except ValueError:
        raise DataError(f"{rows.where}: the target column holds text; a regression's target must be numbers") \
            from None
    if not np.isfinite(values).all():
        raise DataError(f"{rows.where}: the target holds {values[~np.isfinite(values)][0]} "
                        f"({int(np.count_nonzero(~np.isfinite(values)))} such value(s)), which no prediction can be "
                        "scored against; fill in or drop those rows")
    error = predictions - values
    sst = float(((values - values.mean()) ** 2).sum())
    sse = float(error @ error)
    return {"rows": n, "mse": sse / n, "mae": float(np.abs(error).mean()),
            "r2": 1.0 - sse / sst if sst > 0 else None, **left_out}  # None: constant targets, r2 undefined


def metric_notices(metrics: dict, where: str) -> list[str]:
    """What the metrics left out or counted as wrong, in words (nothing when every row was scored)."""
    notes = []
    if metrics.get("rows_without_target"):
        k = metrics["rows_without_target"]
        notes.append(f"{where}: {k} {'row has' if k == 1 else 'rows have'} an empty (or NaN) target, left out of the "
                     f"metrics, which score the other {metrics['rows']}")
    if metrics.get("unseen_classes"):
        notes.append(f"{where}: the target holds classes the model never saw in training "
                     f"({', '.join(map(str, metrics['unseen_classes']))}); their rows count as wrong predictions")
    return notes


def _empty_targets(y: np.ndarray, numeric: bool) -> np.ndarray:
    """Which rows have no target: an empty (or blank) cell of text, or a NaN (for a ``numeric``
    target, a cell of text that reads NaN too: a CSV's target column comes as text)."""
    if y.dtype.kind in "USO":
        text = np.char.strip(y.astype(str))
        return (text == "") | (np.char.lower(text) == "nan") if numeric else text == ""
    if y.dtype.kind == "f":
        return np.isnan(y)
    return np.zeros(len(y), dtype=bool)


def _as_classes(y: np.ndarray, classes: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The target ``y`` and the model's ``classes`` in one form to compare: text against text (or
    bool) classes; numbers against numeric classes, a CSV's text parsed (its "0" is the class 0.0).
    A target that cannot hold the classes is an error, not an accuracy of 0."""
    if classes.dtype.kind in "USb":
        if classes.dtype.kind != "b" and y.dtype.kind not in "USO":
            raise DataError(f"{where}: the target holds numbers ({y[0]!r}, ...), but the model's classes are "
                            f"{', '.join(map(str, classes.tolist()))}; give the target as those class names")
        return np.char.strip(y.astype(str)), classes.astype(str)
    if y.dtype.kind in "USO":
        try:
            return np.char.strip(y.astype(str)).astype(np.float64), classes
        except ValueError:
            raise DataError(f"{where}: the target column holds text, but the model's classes are the numbers "
                            f"{', '.join(map(str, classes.tolist()))}; give the target as those numbers") from None
    return y, classes


def _csv_text(table: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(table))
    columns = [c.tolist() for c in table.values()]
    writer.writerows(zip(*columns))
    return buffer.getvalue()
