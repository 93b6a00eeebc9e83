"""Build the train/val/test splits a spec asks for (host arrays; the loader moves them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from devgrad.data import files, synthetic


@dataclass
class Splits:
    """Features (float64) and int64 labels for each split, plus what is known about them."""

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

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def all_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Every split's points in the data's own (unstandardised) coordinates, and their labels."""
        X = np.concatenate([self.X_train, self.X_val, self.X_test])
        y = np.concatenate([self.y_train, self.y_val, self.y_test])
        if self.mean is not None:
            X = X * self.std + self.mean
        return X, y

    def standardize_input(self, X: np.ndarray) -> np.ndarray:
        """Apply the train-set scaling to new raw inputs (e.g. a plot grid)."""
        if self.mean is None:
            return X
        return (X - self.mean) / self.std


def raw_dataset(data: dict, seed: int):
    """(X, y, classes) for the data section of a resolved spec."""
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


def build_splits(data: dict, seed: int) -> Splits:
    """Shuffle with the run's seed, split, and standardise with statistics of the train split only."""
    X, y, classes = raw_dataset(data, seed)
    n = len(X)
    order = np.random.default_rng([seed, 1]).permutation(n)
    n_train = round(data["split"]["train"] * n)
    n_val = round(data["split"]["val"] * n)
    if n_train < 1:
        raise files.DataError(f"the train split is empty ({n} samples × {data['split']['train']}); "
                              "use more samples or a larger data.split.train")
    parts = np.split(order, [n_train, n_train + n_val])
    X_tr, X_va, X_te = (X[p] for p in parts)
    y_tr, y_va, y_te = (y[p] for p in parts)
    mean = std = None
    if data.get("standardize", True):
        mean = X_tr.mean(axis=0)
        std = X_tr.std(axis=0)
        std[std < 1e-12] = 1.0  # constant features stay put instead of dividing by zero
        X_tr, X_va, X_te = ((part - mean) / std for part in (X_tr, X_va, X_te))
    n_classes = max(int(y.max()) + 1, 2)
    return Splits(X_tr, y_tr, X_va, y_va, X_te, y_te, n_classes, list(classes), mean, std)
