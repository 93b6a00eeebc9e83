"""Build the train/val/test splits a spec asks for (host arrays; the loader moves them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from devgrad.data import files, shapes, synthetic


REGRESSION_LOSSES = ("mse", "mae", "huber")
# An integer-valued target with more distinct values than this is a quantity, not classes.
CONTINUOUS_DISTINCT = 100
# Fewer rows per class than this on average: a warning (too few examples to learn each class).
ROWS_PER_CLASS = 10
# A synthetic set up to this many values (rows × features) is generated to check it; a larger
# one is checked from what its spec says (``describe``).
CHEAP_VALUES = 2_000_000
SPLITS = ("train", "val", "test")


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
    notes: list = field(default_factory=list)  # how the data was read, for the run's log
    warnings: list = field(default_factory=list)  # what may make the run meaningless, for the user
    fractions: tuple = ()  # data.split's (train, val, test)

    def sizes_text(self) -> str:
        """The rows of each split, e.g. '5 rows: 4 train, 1 val, 0 test by data.split 0.7/0.15/0.15'."""
        return split_text((len(self.X_train), len(self.X_val), len(self.X_test)), self.fractions)

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


def raw_dataset(data: dict, seed: int, notes: list | None = None):
    """(X, y, classes) for the data section of a resolved spec: y indexes ``classes``, the
    target's distinct values in sorted order. ``notes`` receives how a file's labels were read."""
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
        return files.read_npz(data["path"], notes)
    if source == "idx":
        return files.read_idx_pair(data["images"], data["labels"], notes)
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


def _check_csv_numbers(data: dict, task: str, loss: str, classes: list) -> None:
    """A CSV target with text where numbers are meant is an error naming the cell: with task:
    regression; and, with task auto, when the column's other cells are numbers and either the
    loss is a regression's or those numbers are not whole (a missing or mistyped value, such as
    n/a or 1,000.25, would otherwise turn every value into a class name)."""
    if _numeric(classes) is not None or task == "classification":
        return
    numbers = [float(c) for c in classes if _numeric([c]) is not None]
    if not numbers:  # a column of text throughout: choose_task says what the task needs of it
        return
    if task != "regression" and not (loss in REGRESSION_LOSSES or any(v != round(v) for v in numbers)):
        return
    line, text = files.csv_text_cell(data["path"], data["target"])
    cell = f"{data['path']}, line {line}, column {data['target']!r}: {text!r} is not a number"
    if task == "regression":
        raise files.DataError(f"{cell}; task: regression needs a number in every row of the target: fill it in or "
                              "drop that row, or use task: classification for class labels")
    raise files.DataError(f"{cell}, while the column's other cells are (e.g. {numbers[0]:g}); if it is a missing or "
                          "mistyped value, fill it in or drop that row (numbers are written like 1000.25 or 1e3, "
                          "without thousands separators); if the column holds class names, set task: classification")


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


def split_sizes(n: int, split: dict) -> tuple[int, int, int]:
    """Rows of the train, val and test splits of ``n`` rows for data.split's fractions: every row
    in exactly one split, and none in a split whose fraction is 0 (a row that rounding leaves over
    goes to val, or to train when val is 0 too, never to an empty test split)."""
    n_train = min(round(split["train"] * n), n)
    if split["test"] == 0:
        return (n_train, n - n_train, 0) if split["val"] != 0 else (n, 0, 0)
    n_val = min(round(split["val"] * n), n - n_train)
    return n_train, n_val, n - n_train - n_val


def split_text(sizes: tuple, fractions: tuple = ()) -> str:
    """'5 rows: 4 train, 1 val, 0 test by data.split 0.7/0.15/0.15'."""
    text = f"{sum(sizes)} rows: " + ", ".join(f"{k} {name}" for k, name in zip(sizes, SPLITS))
    return text + (f" by data.split {'/'.join(f'{f:g}' for f in fractions)}" if fractions else "")


def _fractions(data: dict) -> tuple:
    return tuple(data["split"][name] for name in SPLITS)


def _train_not_empty(n: int, data: dict) -> tuple[int, int, int]:
    """The split sizes of ``n`` rows; an empty train split is an error that gives them."""
    sizes = split_sizes(n, data["split"])
    if sizes[0] < 1:
        raise files.DataError(f"the train split is empty ({split_text(sizes, _fractions(data))}); "
                              "use more samples or a larger data.split.train")
    return sizes


def build_splits(data: dict, seed: int, task: str = "classification", loss: str = "auto") -> Splits:
    """Shuffle with the run's seed, split, and standardise with statistics of the train split
    only: the features, and for regression the target (``data.standardize_target``)."""
    notes: list[str] = []
    X, y, classes = raw_dataset(data, seed, notes)
    where = _target_name(data)
    if data["source"] == "csv":
        _check_csv_numbers(data, task, loss, classes)
    task, reason = choose_task(task, loss, y, classes, where)
    if task == "regression":
        values = _numeric(classes)
        assert values is not None, "choose_task refuses regression on a target that is not numeric"
        y = values[y]
    elif len(classes) < 2:
        raise files.DataError(f"{where}: the target has a single class ({classes[0]!r}); "
                              "classification needs two or more")
    n = len(X)
    sizes = _train_not_empty(n, data)
    order = np.random.default_rng([seed, 1]).permutation(n)
    parts = np.split(order, [sizes[0], sizes[0] + sizes[1]])
    warnings = [] if task == "regression" else class_warnings(y, classes, [y[p] for p in parts], where)
    notes.append(f"{split_text(sizes, _fractions(data))}; {X.shape[1]} features")
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
        return Splits(X_tr, y_tr, X_va, y_va, X_te, y_te, 0, [], mean, std, task, reason, y_mean, y_std,
                      notes=notes, warnings=warnings, fractions=_fractions(data))
    n_classes = max(int(y.max()) + 1, 2)
    return Splits(X_tr, y_tr, X_va, y_va, X_te, y_te, n_classes, list(classes), mean, std, task, reason,
                  notes=notes, warnings=warnings, fractions=_fractions(data))


def _names(indices, classes: list, counts: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(f"{classes[i]!r} ({counts[i]} row{'s' if counts[i] != 1 else ''})" for i in indices[:limit])
    return shown + (f" and {len(indices) - limit} more" if len(indices) > limit else "")


def class_warnings(y: np.ndarray, classes: list, parts: list, where: str) -> list[str]:
    """What makes a classification doubtful, as warnings: few rows per class, classes too rare
    to be in every split, classes the train split lacks. A target where training would be
    meaningless (a quantity or an identifier: most values seen once) is an error."""
    n, k = len(y), len(classes)
    counts = np.bincount(y, minlength=k)
    numeric = _numeric(classes) is not None
    if numeric and k > CONTINUOUS_DISTINCT and k * ROWS_PER_CLASS > n:
        raise files.DataError(
            f"{where}: {k} distinct numbers in {n} rows look like a continuous quantity, not classes; to predict "
            "it set task: regression (with loss: mse, mae or huber), or choose the class column as data.target")
    singles = int((counts == 1).sum())
    if 2 * singles > k:
        hint = ("if it is a quantity set task: regression; if it is an identifier choose another data.target"
                if numeric else "check that data.target names the class column")
        raise files.DataError(f"{where}: {k} classes in {n} rows, {singles} of them with a single row: a class seen "
                              f"once cannot be both learned and measured, so training would be meaningless; {hint}")
    warnings = []
    if k * ROWS_PER_CLASS > n:
        warnings.append(f"{where}: {k} classes in {n} rows, about {n / k:.1f} rows per class (fewer than "
                        f"{ROWS_PER_CLASS}): too few to learn each class well; use more rows or fewer classes")
    used = sum(1 for part in parts if len(part))
    rare = np.flatnonzero(counts < used)
    if len(rare):
        warnings.append(f"{where}: class{'es' if len(rare) > 1 else ''} {_names(rare, classes, counts)} "
                        f"{'have' if len(rare) > 1 else 'has'} fewer rows than the {used} splits, so cannot be in "
                        "every split: a class missing from train is never learned, one missing from val or test "
                        "is never measured; add rows of it or drop it")
    unseen = np.setdiff1d(np.flatnonzero(np.bincount(parts[0], minlength=k) == 0), rare)
    if len(unseen):
        warnings.append(f"{where}: class{'es' if len(unseen) > 1 else ''} {_names(unseen, classes, counts)} "
                        f"{'have' if len(unseen) > 1 else 'has'} no rows in the train split, so the model never "
                        "learns it; use more rows of it or a larger data.split.train")
    return warnings


@dataclass
class DataSummary:
    """What ``devgrad validate`` knows of a large synthetic set from its spec alone (the fields
    of ``Splits`` that a run's checks read)."""

    n_samples: int
    n_features: int
    n_classes: int
    task: str
    task_reason: str
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def describe(data: dict, seed: int, task: str = "classification", loss: str = "auto") -> Splits | DataSummary:
    """The data as far as checking a spec needs it: the splits when they are cheap to make
    (files are read: their checks need their values), else, for a large synthetic set, what its
    spec says about it, without generating it."""
    shape = shapes.data_shape(data)
    if (data["source"] not in synthetic.GENERATORS or shape is None or shape.n_classes is None
            or shape.n_samples * shape.n_features <= CHEAP_VALUES):
        return build_splits(data, seed, task, loss)
    classes = [str(c) for c in range(shape.n_classes)]
    task, reason = choose_task(task, loss, np.arange(shape.n_classes), classes, _target_name(data))
    sizes = _train_not_empty(shape.n_samples, data)
    notes = [f"{split_text(sizes, _fractions(data))}; {shape.n_features} features (not generated to check)"]
    return DataSummary(shape.n_samples, shape.n_features, 0 if task == "regression" else shape.n_classes, task,
                       reason, notes)
