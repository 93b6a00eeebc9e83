"""What a data source holds (rows, features, classes) and what reading it costs in memory,
from the spec and the files' headers alone: nothing is generated and no data is read."""

from __future__ import annotations

import gzip
import inspect
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devgrad.data import files, synthetic

FLOAT64 = 8
# A CSV's rows are estimated from the mean length of the lines in its first part.
CSV_SAMPLE_BYTES = 1 << 20
# Reading a CSV: every feature cell lands in a packed float64 buffer that grows by about 1/8 at
# a time; every row keeps its label as a Python string (with its list slot) until the labels
# are turned into classes.
CSV_GROWTH = 1.125
CSV_LABEL_BYTES = 120
# Generating a synthetic set makes a few arrays of its size (candidates, temporaries, the
# shuffled copy, the noisy copy) before the one it returns.
SYNTHETIC_COPIES = 4


@dataclass(frozen=True)
class DataShape:
    """A data source's size: ``n_samples`` rows of ``n_features`` features, ``n_classes`` (None
    when only its labels would tell), the host bytes reading or generating it needs at its
    peak, what it is (for messages) and what to change to make it smaller."""

    n_samples: int
    n_features: int
    n_classes: int | None
    read_bytes: int
    what: str
    smaller: str


def data_shape(data: dict) -> DataShape | None:
    """The shape of the data section of a resolved spec, or None where it is not known without
    reading the data (a scikit-learn toy set, a file that is missing or damaged: reading it
    reports that)."""
    source = data["source"]
    if source in synthetic.GENERATORS:
        return _synthetic(data)
    try:
        if source == "csv":
            return _csv(Path(data["path"]))
        if source == "npz":
            return _npz(Path(data["path"]))
        if source == "idx":
            return _idx(Path(data["images"]))
    except (OSError, EOFError, ValueError, KeyError, struct.error, zipfile.BadZipFile):
        return None
    return None


def generator_option(source: str, name: str, data: dict):
    """A synthetic generator's option: the spec's value, else the generator's own default (None
    when the generator has no such option)."""
    parameters = inspect.signature(synthetic.GENERATORS[source]).parameters
    if name not in parameters:
        return None
    value = data.get(name)
    return parameters[name].default if value is None else value


def _synthetic(data: dict) -> DataShape:
    source, n = data["source"], data["n_samples"]
    n_features = generator_option(source, "n_features", data) or 2
    n_classes = generator_option(source, "n_classes", data) or 2
    read = SYNTHETIC_COPIES * n * (n_features + 1) * FLOAT64
    if source == "classification":  # the teacher network's hidden layer and logits, for every row
        read += n * 5 * n_classes * FLOAT64
    smaller = "use fewer data.n_samples" + (" or data.n_features" if source == "classification" else "")
    return DataShape(n, n_features, n_classes, read, f"{source}: {n:,} rows × {n_features} features", smaller)


def _csv(path: Path) -> DataShape:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(CSV_SAMPLE_BYTES)
    lines = head.splitlines()
    if not lines:
        raise ValueError("empty")
    n_columns = len(lines[0].split(b","))
    body = lines[1:] if len(head) == size else lines[1:-1]  # the sample's last line may be cut
    if len(head) == size or not body:
        n = len(body)
    else:
        per_line = sum(len(line) + 1 for line in body) / len(body)
        n = math.ceil((size - len(lines[0]) - 1) / per_line)
    n_features = max(n_columns - 1, 0)
    read = int(n * n_features * FLOAT64 * CSV_GROWTH) + n * CSV_LABEL_BYTES
    return DataShape(n, n_features, None, read, f"{path.name}: about {n:,} rows × {n_features} features",
                     "use a smaller file (fewer rows or columns)")


def _npy_header(archive: zipfile.ZipFile, name: str) -> tuple[tuple, np.dtype]:
    with archive.open(name) as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(fh)
    return shape, dtype


def _npz(path: Path) -> DataShape | None:
    files.check_npz_file(path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if not {"X.npy", "y.npy"} <= names:
            return None
        x_shape, x_dtype = _npy_header(archive, "X.npy")
        y_shape, y_dtype = _npy_header(archive, "y.npy")
    if len(x_shape) < 2:
        return None
    n, n_features = x_shape[0], math.prod(x_shape[1:])
    n_classes = y_shape[1] if len(y_shape) == 2 and y_shape[1] > 1 else None
    # X as stored, X as float64, y as stored and its class indices
    read = n * n_features * (x_dtype.itemsize + FLOAT64) + math.prod(y_shape) * y_dtype.itemsize + n * FLOAT64
    return DataShape(n, n_features, n_classes, read, f"{path.name}: {n:,} rows × {n_features} features",
                     "use a smaller file (fewer rows or features)")


def _idx_dims(path: Path) -> tuple[tuple, int]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        magic = fh.read(4)
        if len(magic) < 4 or magic[2] not in files.IDX_TYPES:
            raise ValueError("not an IDX file")
        dims = struct.unpack(f">{magic[3]}I", fh.read(4 * magic[3]))
    return dims, np.dtype(files.IDX_TYPES[magic[2]]).itemsize


def _idx(images: Path) -> DataShape:
    dims, itemsize = _idx_dims(images)
    n, n_features = dims[0], math.prod(dims[1:])
    # the file's bytes, the images as float64 and scaled (a second float64 array)
    read = n * n_features * (itemsize + 2 * FLOAT64) + n * 2 * FLOAT64
    return DataShape(n, n_features, None, read, f"{images.name}: {n:,} images × {n_features} pixels",
                     "use fewer images")
