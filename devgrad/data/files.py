"""Datasets from files: CSV (header + target column), NPZ (X, y), IDX (MNIST format), scikit-learn."""

from __future__ import annotations

import csv
import gzip
import math
import struct
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A dataset file that cannot be used, with what is wrong and how to fix it."""


def _labels(values: np.ndarray, where: str) -> tuple[np.ndarray, list]:
    """Class labels as 0..k-1 int64, and the original class values in that order."""
    classes, y = np.unique(values, return_inverse=True)
    if len(classes) < 2:
        only = classes[0].item() if hasattr(classes[0], "item") else classes[0]
        raise DataError(f"{where}: the target has a single class ({only!r}); classification needs two or more")
    return y.astype(np.int64), [c.item() if hasattr(c, "item") else c for c in classes]


def read_csv(path, target: str):
    """Features and labels from a CSV with a header row; ``target`` names the label column."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: the file is empty; it needs a header row and data rows") from None
        rows = [row for row in reader if row and any(cell.strip() for cell in row)]
    if target not in header:
        raise DataError(f"{path}: no column named {target!r} for data.target; columns are: {', '.join(header)}")
    t = header.index(target)
    features, labels = [], []
    for line_no, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}, line {line_no}: {len(row)} values but the header has {len(header)} columns")
        labels.append(row[t].strip())
        try:
            values = [float(cell) for i, cell in enumerate(row) if i != t]
        except ValueError:
            bad = next(c for i, c in enumerate(row) if i != t and not _is_number(c))
            raise DataError(f"{path}, line {line_no}: {bad!r} is not a number; feature columns must be "
                            "numeric") from None
        if not all(math.isfinite(v) for v in values):
            column = next(header[i] for i, cell in enumerate(row) if i != t and not math.isfinite(float(cell)))
            raise DataError(f"{path}, line {line_no}, column {column!r}: {row[header.index(column)].strip()!r} is "
                            "not a finite number; fill in or drop that row (training on NaN or infinity only "
                            "produces NaN)")
        features.append(values)
    if not features:
        raise DataError(f"{path}: no data rows after the header")
    y, classes = _labels(np.array(labels), str(path))
    return np.asarray(features, dtype=np.float64), y, classes


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_npz(path):
    """Features ``X`` and labels ``y`` from an .npz file (never unpickled)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("X", "y") if k not in data.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}; the file must hold 'X' "
                                f"(n, features) and 'y' (n,), it has: {', '.join(data.files)}")
            X, y_raw = data["X"], data["y"]
    except ValueError as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot read it as .npz without pickle ({exc})") from None
    if X.ndim < 2 or len(X) != len(y_raw):
        raise DataError(f"{path}: X must be (n, features...) and y (n,), got {X.shape} and {y_raw.shape}")
    if X.dtype.kind in "fc" and not np.isfinite(X).all():
        row, *feature = (int(i) for i in np.argwhere(~np.isfinite(X))[0])
        where = ", ".join(map(str, (row, *feature)))
        raise DataError(f"{path}: X[{where}] is {float(X[(row, *feature)])}, not a finite number (first of them); "
                        "fill in or drop those rows (training on NaN or infinity only produces NaN)")
    y, classes = _labels(y_raw.reshape(-1), str(path))
    return X.reshape(len(X), -1).astype(np.float64), y, classes


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """An array from the IDX format used by MNIST (gzip-compressed files are accepted)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise DataError(f"{path}: header says {dims} ({expected} bytes) but the file has {len(body)} bytes of data")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def read_idx_pair(images, labels):
    X = read_idx(images)
    y_raw = read_idx(labels)
    if len(X) != len(y_raw):
        raise DataError(f"{images} has {len(X)} images but {labels} has {len(y_raw)} labels")
    y, classes = _labels(y_raw.reshape(-1), str(labels))
    # Pixel values scaled to [0, 1] before any standardisation.
    scale = 255.0 if X.dtype == np.uint8 else 1.0
    return X.reshape(len(X), -1).astype(np.float64) / scale, y, classes


def load_sklearn(name: str):
    """A scikit-learn toy dataset (bundled with scikit-learn, nothing is downloaded)."""
    try:
        from sklearn import datasets  # noqa: PLC0415 - optional dependency (the sklearn extra)
    except ImportError:
        raise DataError(f"data.source sklearn:{name} needs scikit-learn: pip install 'devgrad[sklearn]' "
                        "(or pip install scikit-learn)") from None
    loader = getattr(datasets, f"load_{name}")
    bunch = loader()
    if name in SKLEARN_REGRESSION:  # a quantity: its values, sorted, are what y indexes
        y, values = _labels(np.asarray(bunch.target, dtype=np.float64), f"sklearn:{name}")
        return bunch.data.astype(np.float64), y, values
    classes = [str(c) for c in getattr(bunch, "target_names", np.unique(bunch.target))]
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64), classes


# scikit-learn's bundled datasets (no download): classification, and regression (a continuous
# target; California housing is not bundled, it downloads, so it is not offered).
SKLEARN_CLASSIFICATION = ("digits", "iris", "breast_cancer", "wine")
SKLEARN_REGRESSION = ("diabetes",)
