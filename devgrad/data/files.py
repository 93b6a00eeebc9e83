"""Datasets from files: CSV (header + target column), NPZ (X, y), IDX (MNIST format), scikit-learn."""

from __future__ import annotations

import csv
import difflib
import gzip
import math
import struct
import zipfile
from array import array
from pathlib import Path

import numpy as np

from devgrad.version import extra_hint


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
    """Features and labels from a CSV with a header row; ``target`` names the label column.

    Read as UTF-8 (a byte-order mark before the header is dropped, not glued to the first
    column's name), one row at a time into a packed float64 buffer."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = _header(reader, path, target)
            t = header.index(target)
            features: array = array("d")
            labels: list[str] = []
            cells = _TargetCells()
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    labels.append(_csv_row(row, reader.line_num, header, t, path, features))
                    cells.see(labels[-1], reader.line_num)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the CSV as UTF-8") from None
    if not labels:
        raise DataError(f"{path}: no data rows after the header")
    y, classes = _csv_labels(labels, cells, path, target)
    return np.frombuffer(features, dtype=np.float64).reshape(len(labels), len(header) - 1), y, classes


class _TargetCells:
    """What a CSV's target column holds, seen one cell at a time: how many cells are finite
    numbers, and the first cell that is text and the first that is NaN or infinite (line, text)."""

    def __init__(self) -> None:
        self.numbers = 0
        self.first_text: tuple[int, str] | None = None
        self.first_nonfinite: tuple[int, str] | None = None

    def see(self, cell: str, line: int) -> None:
        try:
            value = float(cell)
        except ValueError:
            self.first_text = self.first_text or (line, cell)
            return
        if math.isfinite(value):
            self.numbers += 1
        elif self.first_nonfinite is None:
            self.first_nonfinite = (line, cell)


def _csv_labels(labels: list[str], cells: _TargetCells, path: Path, target: str) -> tuple[np.ndarray, list]:
    """A CSV target's labels and classes: numbers when every cell is a number (their values: 1, 1.0
    and 01 are one class, and classes sort by value), else the cells as text. A NaN or infinite
    cell among numbers is a missing value, neither a class nor a quantity: an error naming it."""
    if cells.first_nonfinite is not None and cells.numbers:
        line, text = cells.first_nonfinite
        raise DataError(f"{path}, line {line}, column {target!r}: the target {text!r} is not a finite number, and "
                        "the column's other cells are numbers; fill it in or drop that row (a missing value is "
                        "neither a class nor a quantity)")
    if cells.first_text is None and cells.first_nonfinite is None:
        return _number_labels(labels, str(path))
    return _labels(np.array(labels), str(path))


def _number_labels(texts: list[str], where: str) -> tuple[np.ndarray, list]:
    """Labels written as numbers, as their values: int64 when all are whole numbers (exactly, for
    any integer int64 holds), else float64."""
    try:
        values = np.array([int(t) for t in texts], dtype=np.int64)
    except (ValueError, OverflowError):
        values = np.array([float(t) for t in texts], dtype=np.float64)
        if bool(np.all(values == np.round(values))) and float(np.abs(values).max()) < 2.0 ** 53:
            values = values.astype(np.int64)
    return _labels(values, where)


def csv_text_cell(path, target: str) -> tuple[int, str]:
    """The line and text of the first cell of a CSV's ``target`` column that is not a number: read
    again only for an error message that names it ((0, '') when there is none)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        t = [h.strip() for h in next(reader)].index(target)
        for row in reader:
            if len(row) > t and any(cell.strip() for cell in row) and not _is_number(row[t]):
                return reader.line_num, row[t].strip()
    return 0, ""


def _header(reader, path: Path, target: str) -> list[str]:
    """The CSV's column names, checked: unique, holding ``target`` and at least one feature."""
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows") from None
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DataError(f"{path}: the header names {', '.join(repr(h) for h in repeated)} more than once; "
                        "give every column a unique name (which one is meant would otherwise be a guess)")
    if target not in header:
        raise DataError(f"{path}: no column named {target!r} for data.target; columns are: {', '.join(header)}"
                        f"{_missing_target_hint(header, target)}")
    if len(header) == 1:
        raise DataError(f"{path}: the only column is the target {target!r}; the model needs at least one "
                        "feature column besides it")
    return header


def _missing_target_hint(header: list[str], target: str) -> str:
    """The likely reason a header lacks the target: another separator (one column), or a typo."""
    separators = [sep for sep in (";", "\t", "|") if len(header) == 1 and sep in header[0]]
    if separators:
        return (f"; the header is one column: the file looks separated by {separators[0]!r}, and devgrad reads "
                "comma-separated values (save it as CSV with commas)")
    close = difflib.get_close_matches(target, header, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _csv_row(row: list, line_no: int, header: list, t: int, path: Path, features: array) -> str:
    """Append one data row's features to ``features`` (checked: numbers, finite); its label."""
    if len(row) != len(header):
        raise DataError(f"{path}, line {line_no}: {len(row)} values but the header has {len(header)} columns")
    label = row[t].strip()
    if not label:
        raise DataError(f"{path}, line {line_no}, column {header[t]!r}: the target is empty; fill it in or drop "
                        "that row (an empty cell is not a class)")
    try:
        values = [float(cell) for i, cell in enumerate(row) if i != t]
    except ValueError:
        i, bad = next((i, c) for i, c in enumerate(row) if i != t and not _is_number(c))
        what = "is empty" if not bad.strip() else f"{bad.strip()!r} is not a number"
        raise DataError(f"{path}, line {line_no}, column {header[i]!r}: {what}; feature columns must be "
                        "numeric") from None
    if not all(math.isfinite(v) for v in values):
        i = next(i for i, cell in enumerate(row) if i != t and not math.isfinite(float(cell)))
        raise DataError(f"{path}, line {line_no}, column {header[i]!r}: {row[i].strip()!r} is not a finite "
                        "number; fill in or drop that row (training on NaN or infinity only produces NaN)")
    features.extend(values)
    return label


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive's first bytes (an empty archive: the second)
NPY_MAGIC = b"\x93NUMPY"


def check_npz_file(path: Path) -> None:
    """Refuse a file that is not an NPZ archive (a text file, a single .npy) by its first bytes,
    before NumPy would guess it is a pickle."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head.startswith(NPY_MAGIC):
        raise DataError(f"{path}: a single .npy array, not an NPZ archive; save X and y together with "
                        "numpy.savez(path, X=X, y=y)")
    if not head.startswith(ZIP_MAGIC):
        raise DataError(f"{path}: not an NPZ file (an .npz is a zip archive of arrays, written by "
                        f"numpy.savez(path, X=X, y=y)); this file starts with {head!r}")


def read_npz(path, notes: list | None = None):
    """Features ``X`` and labels ``y`` from an .npz file (never unpickled). ``notes`` receives a
    line on how a 2-D ``y`` was read (one-hot rows or a single column), for the run's log."""
    path = Path(path)
    check_npz_file(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("X", "y") if k not in data.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}; the file must hold 'X' "
                                f"(n, features) and 'y' (n,), it has: {', '.join(data.files)}")
            X, y_raw = data["X"], data["y"]
    except DataError:
        raise
    except ValueError as exc:  # an object array: reading it would mean unpickling
        raise DataError(f"{path}: cannot read it without unpickling ({exc}); save X and y as numeric "
                        "(or, for y, text) arrays") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: a damaged NPZ file ({exc}); write it again with numpy.savez") from None
    if X.ndim == 0 or len(X) == 0 or y_raw.ndim == 0 or len(y_raw) == 0:
        raise DataError(f"{path}: X has shape {X.shape} and y {y_raw.shape}: no samples to train on; write the "
                        "file again with one row of X and one value of y per sample")
    _check_features(X, path)
    y_raw = label_column(y_raw, f"{path}: y", notes)
    if len(X) != len(y_raw):
        raise DataError(f"{path}: X has {len(X)} rows but y has {len(y_raw)}; they must have one row per sample")
    y, classes = _labels(y_raw, str(path))
    return X.reshape(len(X), -1).astype(np.float64), y, classes


def _check_features(X: np.ndarray, path: Path) -> None:
    """An NPZ's ``X``: real numbers, finite, at least one feature per row."""
    if X.ndim < 2:
        raise DataError(f"{path}: X must be (n, features...), got shape {X.shape}")
    if X.dtype.kind == "c":
        raise DataError(f"{path}: X is complex ({X.dtype}); devgrad trains on real features: store X.real and "
                        "X.imag as separate feature columns (np.concatenate([X.real, X.imag], axis=1)), or "
                        "np.abs(X)")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path}: X has dtype {X.dtype}; features must be numbers (bool, int or float)")
    if math.prod(X.shape[1:]) == 0:
        raise DataError(f"{path}: X has shape {X.shape}, with no features; the model needs at least one")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
        where = ", ".join(map(str, first))
        raise DataError(f"{path}: X[{where}] is {float(X[first])}, not a finite number (first of them); "
                        "fill in or drop those rows (training on NaN or infinity only produces NaN)")


def label_column(y: np.ndarray, where: str, notes: list | None = None) -> np.ndarray:
    """Labels as one value per row: ``y`` (n,) as it is; (n, 1) flattened; one-hot (n, k) as the
    index of each row's 1. Anything else (multi-label or soft rows, more dimensions) is refused,
    as are values that cannot be labels (complex, NaN, empty text). ``notes`` gets what was done."""
    if y.ndim == 0:
        raise DataError(f"{where} is a single value; it must hold one label per row of X")
    if y.dtype.kind == "c":
        raise DataError(f"{where} is complex ({y.dtype}); labels are class names or real numbers")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(y))[0])
        raise DataError(f"{where}[{', '.join(map(str, first))}] is {y[first]}, not a label; fill in or drop those "
                        "rows")
    if y.dtype.kind == "U" and (np.char.strip(y) == "").any():
        first = tuple(int(i) for i in np.argwhere(np.char.strip(y) == "")[0])
        raise DataError(f"{where}[{', '.join(map(str, first))}] is empty text, not a class; fill it in or drop "
                        "that row")
    if y.ndim == 1:
        return y
    if y.ndim == 2 and y.shape[1] == 1:
        if notes is not None:
            notes.append(f"{where} is a single column {y.shape}: read as {len(y)} labels")
        return y[:, 0]
    if y.ndim == 2 and y.shape[1] >= 2 and y.dtype.kind in "biuf":
        bad = np.flatnonzero(~(((y == 0) | (y == 1)).all(axis=1) & (y.sum(axis=1) == 1)))
        if not len(bad):
            if notes is not None:
                notes.append(f"{where} is one-hot {y.shape}: each row's class is the column of its 1 "
                             f"(class indices 0..{y.shape[1] - 1})")
            return np.argmax(y, axis=1)
        example = f"; row {int(bad[0])} is {np.array2string(y[bad[0]], threshold=8, precision=4)}"
    else:
        example = ""
    raise DataError(f"{where} has shape {y.shape}, which is not labels{example}. Accepted: (n,) class labels or "
                    "regression targets, (n, 1), or one-hot (n, k) rows of 0s with exactly one 1; multi-label "
                    "rows, soft (probability) rows and multi-output targets are not supported")


IDX_TYPES: dict[int, np.dtype] = {code: np.dtype(kind) for code, kind in (
    (0x08, "u1"), (0x09, "i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8"))}


def read_idx(path) -> np.ndarray:
    """An array from the IDX format used by MNIST (gzip-compressed files are accepted)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise DataError(f"{path}: header says {dims} ({expected} bytes) but the file has {len(body)} bytes of data")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def read_idx_pair(images, labels, notes: list | None = None):
    """Images (scaled to [0, 1] when they are bytes) and labels from a pair of IDX files."""
    X = read_idx(images)
    y_raw = read_idx(labels)
    if len(X) != len(y_raw):
        raise DataError(f"{images} has {len(X)} images but {labels} has {len(y_raw)} labels")
    y, classes = _labels(label_column(y_raw, str(labels), notes), str(labels))
    # Pixel values scaled to [0, 1] before any standardisation.
    scale = 255.0 if X.dtype == np.uint8 else 1.0
    return X.reshape(len(X), -1).astype(np.float64) / scale, y, classes


def load_sklearn(name: str):
    """A scikit-learn toy dataset (bundled with scikit-learn, nothing is downloaded)."""
    try:
        from sklearn import datasets  # noqa: PLC0415 - optional dependency (the sklearn extra)
    except ImportError:
        raise DataError(f"data.source sklearn:{name} needs scikit-learn: "
                        f"{extra_hint('sklearn', 'scikit-learn')}") from None
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
