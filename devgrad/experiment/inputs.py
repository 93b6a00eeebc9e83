"""The inputs a trained model is asked about: arrays, tensors, tables and CSV/NPZ files, turned
into one float64 matrix whose columns are the model's features, in the model's order.

Columns are matched by name wherever names are known (a CSV header, a table's ``.columns``);
the target column, if present, is kept aside for metrics. A missing column, a wrong width, text
in a numeric column or a value that is not finite is a ``DataError`` naming the column and row.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devgrad.core import Tensor
from devgrad.data import DataError
from devgrad.data.files import check_npz_file, label_column


@dataclass
class Inputs:
    """Rows to predict: ``X`` (n, features) float64 in the model's feature order, and the target
    values when the data held them (a CSV's target column as text, an NPZ's ``y``), else None."""

    X: np.ndarray
    y: np.ndarray | None = None
    where: str = "X"


def read(data, names: list[str], target: str | None) -> Inputs:
    """``data`` (an array, a Tensor, a table with ``.columns``/``.to_numpy()``, or a CSV/NPZ path)
    as Inputs for a model of features ``names`` (``target``: the label column's name, if any)."""
    if isinstance(data, str | Path):
        return read_file(Path(data), names, target)
    if isinstance(data, Tensor):
        return _checked(np.asarray(data.numpy()), names, "X")
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        columns = [str(c) for c in data.columns]
        return _from_columns(columns, np.asarray(data.to_numpy()), names, target, "the table")
    if isinstance(data, Mapping):  # {column: values}, the dict a DataFrame is built from
        return _from_columns([str(c) for c in data], _mapping_values(data), names, target, "the dict")
    return _checked(np.asarray(data), names, "X")


def _mapping_values(data: Mapping) -> np.ndarray:
    """The columns of a {name: values} dict side by side (one value per name: one row)."""
    columns = [np.asarray(v).reshape(-1) for v in data.values()]
    lengths = sorted({len(c) for c in columns})
    if len(lengths) > 1:
        raise DataError(f"the dict's columns have different lengths ({', '.join(map(str, lengths))}); give every "
                        "column one value per row")
    return np.column_stack(columns) if columns else np.zeros((0, 0))


def read_file(path: Path, names: list[str], target: str | None) -> Inputs:
    """A CSV (header row) or NPZ (``X``, optional ``y``) file as Inputs."""
    if not path.exists():
        raise DataError(f"{path}: no such file; give a CSV (with a header row) or an NPZ file (X, optional y)")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, names, target)
    if suffix == ".npz":
        return _read_npz(path, names)
    raise DataError(f"{path}: unknown kind of data file; give a .csv (with a header row) or an .npz (X, optional y)")


def _read_csv(path: Path, names: list[str], target: str | None) -> Inputs:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # a BOM is not part of the first name
            rows = [row for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read it as CSV text ({exc})") from None
    if not rows:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise DataError(f"{path}: no data rows after the header")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}, line {line}: {len(row)} values but the header has {len(header)} columns")
    cells = np.array([[cell.strip() for cell in row] for row in body], dtype=str)
    return _from_columns(header, cells, names, target, str(path), first_row=2, row_word="line")


def _read_npz(path: Path, names: list[str]) -> Inputs:
    check_npz_file(path)  # a text file or a single .npy named .npz: said so, before NumPy guesses pickle
    try:
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data.files:
                raise DataError(f"{path}: no array 'X'; the file must hold X (n, features) and may hold y (n,); "
                                f"it has: {', '.join(data.files) or 'nothing'}")
            X = data["X"]
            y = data["y"] if "y" in data.files else None
    except DataError:
        raise
    except Exception as exc:  # a pickled object array, a damaged archive: np.load says which in its words
        raise DataError(f"{path}: cannot read it as an .npz file without pickle ({type(exc).__name__}: {exc})") \
            from None
    if X.ndim > 2:  # images (n, height, width): one row of pixels each, as the training data was read
        X = X.reshape(len(X), -1)
    inputs = _checked(X, names, f"{path} array X")
    if y is not None:
        # y as training reads it: (n,), a single column, or one-hot rows (their class indices); never
        # flattened row by row, which would misalign n*k values against n rows
        y = label_column(y, f"{path} array y")
        if len(y) != len(inputs.X):
            raise DataError(f"{path}: X has {len(inputs.X)} rows but y has {len(y)}; they must match")
    inputs.y = y
    return inputs


def _from_columns(columns: list[str], values: np.ndarray, names: list[str], target: str | None, where: str,
                  first_row: int = 0, row_word: str = "row") -> Inputs:
    """Select the model's features from named columns (by name; by position when the model's names
    are the generated x0..x{n-1}, the table has exactly that many other columns and none of them
    is named like a feature)."""
    if values.ndim != 2 or values.shape[1] != len(columns):
        raise DataError(f"{where}: {len(columns)} column names but values of shape {values.shape}")
    repeated = sorted({c for c in columns if columns.count(c) > 1 and (c in names or c == target)})
    if repeated:
        which = ", ".join(repr(c) for c in repeated)
        which = f"the columns {which} appear" if len(repeated) > 1 else f"the column {which} appears"
        raise DataError(f"{where}: {which} more than once; give every column the model reads a unique name (which "
                        "one is meant would otherwise be a guess)")
    y = values[:, columns.index(target)] if target is not None and target in columns else None
    missing = [n for n in names if n not in columns]
    if missing:
        rest = [i for i, c in enumerate(columns) if c != target]
        # by position only when no column is named like a feature: a header naming some of them
        # ("x1,z") means the columns are named, and reading it by position would shift them
        named = any(columns[i] in names for i in rest)
        if not _generated(names) or len(rest) != len(names) or named:
            raise DataError(f"{where}: no column {missing[0]!r}"
                            f"{f' (nor {len(missing) - 1} more)' if len(missing) > 1 else ''}; the model takes "
                            f"{', '.join(names)}; the data has {', '.join(columns)}")
        order = rest
    else:
        order = [columns.index(n) for n in names]
    X = _numeric(values[:, order], names, where, first_row, row_word)
    return Inputs(X, y, where)


def _generated(names: list[str]) -> bool:
    return names == [f"x{i}" for i in range(len(names))]


def _checked(X: np.ndarray, names: list[str], where: str) -> Inputs:
    """An unnamed array: one row (features,) or rows (n, features), exactly the model's width."""
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2 or X.shape[1] != len(names):
        shape = "x".join(map(str, X.shape))
        raise DataError(f"{where} has shape ({shape}), but the model takes {len(names)} features per row "
                        f"({', '.join(names)}): give an array (n, {len(names)}) or one row ({len(names)},)")
    return Inputs(_numeric(X, names, where, 0, "row"), None, where)


def _numeric(values: np.ndarray, names: list[str], where: str, first_row: int, row_word: str) -> np.ndarray:
    """``values`` as finite float64; the first cell that is text, empty or not finite is named."""
    if values.shape[0] == 0:
        raise DataError(f"{where} has no rows: nothing to predict")
    if values.dtype.kind in "biuf":
        X = values.astype(np.float64)
    else:
        X = np.empty(values.shape, dtype=np.float64)
        for j in range(values.shape[1]):
            for i, cell in enumerate(values[:, j]):
                try:
                    X[i, j] = float(cell)
                except (TypeError, ValueError):
                    cell = cell.item() if isinstance(cell, np.generic) else cell  # shown as 'tall', not np.str_
                    raise DataError(f"{where}, {row_word} {i + first_row}, column {names[j]!r}: {cell!r} is not a "
                                    "number; the model's feature columns must be numeric") from None
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        count = int(bad.sum())
        raise DataError(f"{where}, {row_word} {i + first_row}, column {names[j]!r}: {X[i, j]} is not a finite "
                        f"number ({count} such value{'s' if count > 1 else ''} in all); fill in or drop those rows")
    return X
