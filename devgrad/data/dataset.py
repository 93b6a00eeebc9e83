"""Build the train/val/test splits a spec asks for (host arrays; the loader moves them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from devgrad.data import files, synthetic


REGRESSION_LOSSES = ("mse", "mae", "huber")
# An integer-valued target with more distinct values than this is a quantity, not classes.
CONTINUOUS_DISTINCT = 100


@dataclass
class Splits:
    """Features (float64) and, for each split, int64 class labels (classification) or float64
    targets standardised with the train split's mean and std (regression), plus what is known
    about them: ``task`` and why it was chosen, the class names, the scalings."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    classes: list = field(default_factory=list)
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    task: str = "classification"
    task_reason: str = ""
    y_mean: float = 0.0  # regression: targets are (value - y_mean) / y_std in every split
    y_std: float = 1.0

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    def target_values(self, y: np.ndarray) -> np.ndarray:
        """Regression targets (or predictions) in the target's own units."""
        return np.asarray(y, dtype=np.float64) * self.y_std + self.y_mean

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def all_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Every split's points in the data's own (unstandardised) coordinates, and their labels."""
        X = np.concatenate([self.X_train, self.X_val, self.X_test])
        y = np.concatenate([self.y_train, self.y_val, self.y_test])
        return self.raw_input(X), y

    def raw_input(self, X: np.ndarray) -> np.ndarray:
        """Standardised inputs back in the data's own coordinates (``standardize_input`` undone)."""
        return X if self.mean is None else X * self.std + self.mean

    def standardize_input(self, X: np.ndarray) -> np.ndarray:
        """Apply the train-set scaling to new raw inputs (e.g. a plot grid)."""
        if self.mean is None:
            return X
        return (X - self.mean) / self.std


def raw_dataset(data: dict, seed: int):
    """(X, y, classes) for the data section of a resolved spec: y indexes ``classes``, the
    target's distinct values in sorted order."""
    source = data["source"]
    if source in synthetic.GENERATORS:
        kwargs = {"n_samples": data["n_samples"], "noise": data["noise"], "seed": seed}
        if data.get("n_classes") is not None and source in ("spirals", "blobs", "classification"):
            kwargs["n_classes"] = data["n_classes"]
        if data.get("n_features") is not None and source == "classification":
            kwargs["n_features"] = data["n_features"]
        X, y = synthetic.GENERATORS[source](**kwargs)
        return X, y, [str(c) for c in range(int(y.max()) + 1)]
    if source == "csv":
        return files.read_csv(data["path"], data["target"])
    if source == "npz":
        return files.read_npz(data["path"])
    if source == "idx":
        return files.read_idx_pair(data["images"], data["labels"])
    if source.startswith("sklearn:"):
        return files.load_sklearn(source.split(":", 1)[1])
    raise files.DataError(f"unknown data.source {source!r}")


def _target_name(data: dict) -> str:
    source = data["source"]
    if source == "csv":
        return f"{data['path']} column {data['target']!r}"
    if source == "npz":
        return f"{data['path']} array 'y'"
    if source == "idx":
        return str(data["labels"])
    return f"data.source {source}"


def _numeric(classes: list) -> np.ndarray | None:
    """The class values as float64 numbers, or None when some are not numbers."""
    try:
        values = np.array([float(c) for c in classes], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return values if np.isfinite(values).all() else None


def choose_task(task: str, loss: str, y: np.ndarray, classes: list, where: str) -> tuple[str, str]:
    """(``classification`` | ``regression``, why) for a spec's ``task`` and loss name and the
    target's values; a continuous target given to classification is an error that says so."""
    values = _numeric(classes)
    integral = values is not None and bool(np.all(values == np.round(values)))
    continuous = values is not None and (not integral or len(classes) > CONTINUOUS_DISTINCT)
    if task == "regression":
        if values is None:
            example = next(c for c in classes if _numeric([c]) is None)
            raise files.DataError(f"{where}: task: regression needs a numeric target, but it has {example!r}; "
                                  "use task: classification for class labels")
        return "regression", "task: regression in the spec"
    if task == "auto" and loss in REGRESSION_LOSSES and continuous:
        kind = "non-integer values" if not integral else f"{len(classes)} distinct values"
        return "regression", (f"task auto: regression, because the loss is {loss} and the target is continuous "
                              f"({kind}); set task: classification to treat its values as classes")
    if values is not None and not integral:
        example = next(v for v in values if v != round(v))
        raise files.DataError(
            f"{where}: the target has non-integer values (e.g. {example:g}), which are not classes. For a "
            "continuous target set task: regression (with loss: mse, mae or huber); for classes, give integer "
            "or text labels")
    why = "task: classification in the spec" if task == "classification" else (
        f"task auto: classification ({len(classes)} classes{'' if loss in REGRESSION_LOSSES else f', loss {loss}'})")
    return "classification", why


def _std(X: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """X.std(axis=0), reusing the column means already computed (NumPy 2's ``mean=``) where the
    installed NumPy can, instead of a second pass over X for them; the same numbers either way."""
    if _NUMPY_2:
        return X.std(axis=0, mean=mean[None, :])
    return X.std(axis=0)


_NUMPY_2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def build_splits(data: dict, seed: int, task: str = "classification", loss: str = "auto") -> Splits:
    """Shuffle with the run's seed, split, and standardise with statistics of the train split
    only: the features, and for regression the target (``data.standardize_target``)."""
    X, y, classes = raw_dataset(data, seed)
    task, reason = choose_task(task, loss, y, classes, _target_name(data))
    if task == "regression":
        y = _numeric(classes)[y]
    elif len(classes) < 2:
        raise files.DataError(f"{_target_name(data)}: the target has a single class ({classes[0]!r}); "
                              "classification needs two or more")
    n = len(X)
    order = np.random.default_rng([seed, 1]).permutation(n)
    n_train = round(data["split"]["train"] * n)
    n_val = round(data["split"]["val"] * n)
    if n_train < 1:
        raise files.DataError(f"the train split is empty ({n} samples × {data['split']['train']}); "
                              "use more samples or a larger data.split.train")
    parts = np.split(order, [n_train, n_train + n_val])
    X = np.asarray(X, dtype=np.float64)  # features are float64 (no copy when they already are)
    X_tr, X_va, X_te = (X[p] for p in parts)  # copies (fancy indexing): ours to change in place
    y_tr, y_va, y_te = (y[p] for p in parts)
    mean = std = None
    if data.get("standardize", True):
        mean = X_tr.mean(axis=0)
        std = _std(X_tr, mean)
        std[std < 1e-12] = 1.0  # constant features stay put instead of dividing by zero
        for part in (X_tr, X_va, X_te):  # (part - mean) / std, without two temporaries per split
            part -= mean
            part /= std
    if task == "regression":
        y_mean, y_std = 0.0, 1.0
        if data.get("standardize_target", True):
            y_mean, y_std = float(y_tr.mean()), float(y_tr.std())
            y_std = y_std if y_std > 1e-12 else 1.0
        y_tr, y_va, y_te = ((part - y_mean) / y_std for part in (y_tr, y_va, y_te))
        return Splits(X_tr, y_tr, X_va, y_va, X_te, y_te, 0, [], mean, std, task, reason, y_mean, y_std)
    n_classes = max(int(y.max()) + 1, 2)
    return Splits(X_tr, y_tr, X_va, y_va, X_te, y_te, n_classes, list(classes), mean, std, task, reason)
