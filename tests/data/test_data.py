"""Datasets: synthetic generators, file formats, splits, standardisation, the device DataLoader."""

from __future__ import annotations

import functools
import gzip
import re
import struct
import warnings

import numpy as np
import pytest

from devgrad.data import DataError, DataLoader, build_splits, describe, synthetic
from devgrad.data.dataset import split_sizes
from devgrad.data.files import read_csv, read_idx, read_idx_pair, read_npz
from devgrad.cli import main as cli_main
from devgrad.experiment import run
from tests.support.helpers import block_import
from tests.support.run_helpers import SMALL, cli, write_spec

GENERATORS = sorted(synthetic.GENERATORS)


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_are_seeded_and_well_formed(name):
    X1, y1 = synthetic.GENERATORS[name](n_samples=300, seed=4)
    X2, y2 = synthetic.GENERATORS[name](n_samples=300, seed=4)
    X3, _ = synthetic.GENERATORS[name](n_samples=300, seed=5)
    assert X1.shape[0] == 300 and y1.shape == (300,) and y1.dtype == np.int64
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert len(np.unique(y1)) >= 2


def test_triangle_labels_follow_the_three_lines():
    _, y = synthetic.triangle(2000, seed=0)
    assert 0.2 < y.mean() < 0.35
    assert synthetic.inside_triangle(np.array([[0.0, 0.0]]))[0]
    assert not synthetic.inside_triangle(np.array([[0.9, 0.9], [-0.9, -0.9]])).any()


def test_linear_data_is_separable_with_a_margin():
    X, y = synthetic.linear(500, seed=1, margin=0.2)
    # a perceptron-style check: the classes' projections onto some direction do not overlap
    best = max(((X[y == 1] @ d).min() - (X[y == 0] @ d).max())
               for d in (np.array([np.cos(a), np.sin(a)]) for a in np.linspace(0, 2 * np.pi, 721)))
    assert best > 0.15


def test_csv_reader(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,label,b\n1.0,cat,2\n3,dog,4\n5,cat,6\n\n")
    X, y, classes = read_csv(path, "label")
    assert X.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]] and y.tolist() == [0, 1, 0]
    assert classes == ["cat", "dog"]
    with pytest.raises(DataError, match="no column named 'target'.*a, label, b"):
        read_csv(path, "target")
    path.write_text("a,label\n1,x\nfoo,y\n")
    with pytest.raises(DataError, match=r"line 3, column 'a': 'foo' is not a number"):
        read_csv(path, "label")


def test_npz_reader(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2, 2)), y=np.array([3, 5, 3, 5]))
    X, y, classes = read_npz(tmp_path / "d.npz")
    assert X.shape == (4, 4) and y.tolist() == [0, 1, 0, 1] and classes == [3, 5]
    np.savez(tmp_path / "bad.npz", X=np.ones((4, 2)))
    with pytest.raises(DataError, match="missing array"):
        read_npz(tmp_path / "bad.npz")


def _write_idx(path, array: np.ndarray, compress: bool):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_reader_mnist_format(tmp_path, compress):
    images = np.arange(5 * 3 * 3).reshape(5, 3, 3) % 256
    labels = np.array([1, 7, 1, 0, 7])
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"img.idx{suffix}", images, compress)
    _write_idx(tmp_path / f"lab.idx{suffix}", labels, compress)
    np.testing.assert_array_equal(read_idx(tmp_path / f"img.idx{suffix}"), images)
    X, y, classes = read_idx_pair(tmp_path / f"img.idx{suffix}", tmp_path / f"lab.idx{suffix}")
    assert X.shape == (5, 9) and X.max() <= 1.0 and y.tolist() == [1, 2, 1, 0, 2] and classes == [0, 1, 7]
    (tmp_path / "junk.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "junk.idx")


def test_splits_standardise_with_train_statistics_only():
    data = {"source": "blobs", "n_samples": 1000, "noise": 0.0, "n_classes": 3, "n_features": None,
            "split": {"train": 0.6, "val": 0.2, "test": 0.2}, "standardize": True}
    s = build_splits(data, seed=0)
    assert (len(s.X_train), len(s.X_val), len(s.X_test)) == (600, 200, 200)
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(s.X_train.std(axis=0), 1, atol=1e-12)
    assert np.abs(s.X_val.mean(axis=0)).max() > 1e-6, "val must not be standardised with its own statistics"
    again = build_splits(data, seed=0)
    np.testing.assert_array_equal(again.X_test, s.X_test)



@pytest.mark.parametrize("size", [0, -2, 2.5, True])
def test_a_batch_size_that_is_not_a_positive_integer_is_an_error(size):
    """batch_size=0 would silently be one batch of every row (PyTorch refuses it too); None is
    that batch on purpose."""
    X, y = np.zeros((6, 2)), np.zeros(6)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(X, y, batch_size=size)
    assert len(DataLoader(X, y, batch_size=None)) == 1

def test_dataloader_keeps_data_on_device_and_shuffles_per_epoch(device):
    X = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = np.arange(10)
    loader = DataLoader(X, y, batch_size=4, shuffle=True, device=device, seed=1)
    assert len(loader) == 3
    loader.set_epoch(1)
    first = [(xb.numpy(), yb.numpy()) for xb, yb in loader]
    assert [len(b[1]) for b in first] == [4, 4, 2]
    assert all(xb.device is device and xb.dtype == np.float32 for xb, _ in loader)
    seen = np.concatenate([b[1] for b in first])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for xb, yb in first:
        np.testing.assert_array_equal(xb[:, 0], yb * 2)  # rows stay paired with their labels
    loader.set_epoch(1)
    assert np.array_equal(np.concatenate([b[1].numpy() for b in loader]), seen), "same epoch, same order"
    loader.set_epoch(2)
    assert not np.array_equal(np.concatenate([b[1].numpy() for b in loader]), seen)



@pytest.mark.parametrize(("shuffle", "drop_last"), [(True, False), (False, False), (True, True)])
def test_a_loader_reusing_its_arrays_gives_the_batches_of_one_that_slices(shuffle, drop_last):
    """reuse_arrays (the runner's training loader): each batch is written into the same arrays for
    its size, and holds what the slicing loader's batch holds, in the same order, every epoch."""
    X = np.arange(22, dtype=np.float64).reshape(11, 2)
    y = np.arange(11)
    kwargs = dict(batch_size=4, shuffle=shuffle, device="cpu", seed=5, drop_last=drop_last)
    sliced, reused = DataLoader(X, y, **kwargs), DataLoader(X, y, **kwargs, reuse_arrays=True)
    for epoch in (1, 2):
        sliced.set_epoch(epoch)
        reused.set_epoch(epoch)
        arrays = set()
        for (xs, ys), (xr, yr) in zip(sliced, reused, strict=True):
            np.testing.assert_array_equal(xr.numpy(), xs.numpy())
            np.testing.assert_array_equal(yr.numpy(), ys.numpy())
            assert xr.dtype == xs.dtype and yr.dtype == ys.dtype
            arrays.add((id(xr.data), id(yr.data)))
        assert len(arrays) == (1 if drop_last else 2), "one pair of arrays per batch size"

@pytest.mark.slow
def test_sklearn_digits_loads_without_download():
    pytest.importorskip("sklearn")
    data = {"source": "sklearn:digits", "split": {"train": 0.7, "val": 0.15, "test": 0.15}, "standardize": True}
    s = build_splits(data, seed=0)
    assert s.n_features == 64 and s.n_classes == 10


def test_missing_scikit_learn_is_a_clear_error(tmp_path, monkeypatch):
    block_import(monkeypatch, "sklearn")
    with pytest.raises(DataError, match=r"needs scikit-learn: .* pip install -e '\.\[test,sklearn\]'"):
        run({**SMALL, "data": {"source": "sklearn:iris"}}, out=tmp_path, quiet=True)
    assert not (tmp_path / "small").exists()


def test_non_finite_values_in_data_files_are_data_errors_naming_the_place(tmp_path):
    """A 'nan' cell is refused where it is, rather than a run that 'diverges' with a NumPy warning."""
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("a,b,label\n1.0,2.0,x\n3.0,nan,y\n")
    with pytest.raises(DataError, match=r"d.csv, line 3, column 'b': 'nan' is not a finite number"):
        read_csv(csv_path, "label")
    npz_path = tmp_path / "d.npz"
    X = np.zeros((4, 3))
    X[2, 1] = np.inf
    np.savez(npz_path, X=X, y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"d.npz: X\[2, 1\] is inf, not a finite number"):
        read_npz(npz_path)


@pytest.mark.slow
def test_validate_runs_the_data_checks_run_does(tmp_path):
    """'valid' means the run will start: a missing column or a loss that does not fit the classes
    is reported by validate, not only by run."""
    import subprocess
    import sys

    csv_path = tmp_path / "d.csv"
    csv_path.write_text("a,b,label\n" + "1.0,2.0,x\n3.0,4.0,y\n5.0,1.0,z\n" * 5)
    spec = tmp_path / "s.yaml"
    spec.write_text(f"data: {{source: csv, path: {csv_path}, target: label}}\nloss: hinge\n")
    result = subprocess.run([sys.executable, "-m", "devgrad", "validate", str(spec)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 2 and "loss 'hinge' is for two classes but the data has 3" in result.stderr
    spec.write_text(f"data: {{source: csv, path: {csv_path}, target: lbl}}\n")
    result = subprocess.run([sys.executable, "-m", "devgrad", "validate", str(spec)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 2 and "no column named 'lbl'" in result.stderr


# -- labels given as a 2-D y -------------------------------------------------------------------

def _three_blobs(n: int = 240) -> tuple[np.ndarray, np.ndarray]:
    X, y = synthetic.blobs(n, seed=2, n_classes=3)
    return X, y


def _npz_spec(path) -> dict:
    return {**SMALL, "name": "npz", "data": {"source": "npz", "path": str(path)}, "plots": {"enabled": False},
            "train": {"epochs": 3, "batch_size": 32}}


def test_one_hot_y_trains_exactly_like_integer_labels(tmp_path):
    """A one-hot (n, k) y is read as each row's class, never flattened into n·k labels misaligned with X."""
    X, y = _three_blobs()
    np.savez(tmp_path / "labels.npz", X=X, y=y)
    np.savez(tmp_path / "one_hot.npz", X=X, y=np.eye(3)[y])
    by_label = run(_npz_spec(tmp_path / "labels.npz"), out=tmp_path / "a", quiet=True)
    by_one_hot = run(_npz_spec(tmp_path / "one_hot.npz"), out=tmp_path / "b", quiet=True)
    assert by_label.summary["test"]["test_accuracy"] > 0.9
    assert by_one_hot.summary["test"] == by_label.summary["test"]
    assert by_one_hot.history == by_label.history
    log = (by_one_hot.run_dir / "train.log").read_text()
    assert "one_hot.npz: y is one-hot (240, 3): each row's class is the column of its 1" in log


def test_a_single_column_y_is_flattened_and_said(tmp_path):
    X, y = _three_blobs(30)
    np.savez(tmp_path / "d.npz", X=X, y=y[:, None].astype(np.float32))
    notes: list = []
    _, labels, classes = read_npz(tmp_path / "d.npz", notes)
    assert labels.tolist() == y.tolist() and classes == [0.0, 1.0, 2.0]
    assert notes == [f"{tmp_path / 'd.npz'}: y is a single column (30, 1): read as 30 labels"]


@pytest.mark.parametrize(("y", "shown"), [
    (np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]), r"row 0 is \[1 1 0\]"),  # multi-label
    (np.array([[0.7, 0.3], [0.2, 0.8], [1.0, 0.0], [0.0, 1.0]]), r"row 0 is \[0\.7 0\.3\]"),  # soft labels
    (np.zeros((4, 2, 2)), r"shape \(4, 2, 2\)"),
])
def test_other_2d_labels_are_refused_naming_file_shape_and_what_is_accepted(tmp_path, y, shown):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)), y=y)
    with pytest.raises(DataError, match=r"d\.npz: y has shape .*") as info:
        read_npz(tmp_path / "d.npz")
    message = str(info.value)
    assert re.search(shown, message) and "one-hot (n, k) rows of 0s with exactly one 1" in message
    assert "multi-label" in message


# -- what a data file may hold ----------------------------------------------------------------

def test_an_empty_target_cell_is_an_error_not_a_class(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,x\n\n3,4, \n5,6,y\n")
    with pytest.raises(DataError, match=r"d\.csv, line 4, column 'label': the target is empty"):
        read_csv(path, "label")


def test_an_empty_feature_cell_names_its_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,x\n3,,y\n")
    with pytest.raises(DataError, match=r"d\.csv, line 3, column 'b': is empty; feature columns must be numeric"):
        read_csv(path, "label")


def test_repeated_header_names_are_refused_naming_them(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,a,label,b\n1,2,3,x,4\n5,6,7,y,8\n")
    with pytest.raises(DataError, match=r"d\.csv: the header names 'a', 'b' more than once"):
        read_csv(path, "label")


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufefflabel,a\nx,1\ny,2\n".encode())
    X, y, classes = read_csv(path, "label")
    assert X.tolist() == [[1.0], [2.0]] and y.tolist() == [0, 1] and classes == ["x", "y"]


def test_a_csv_of_only_the_target_column_is_refused_before_a_run_folder(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("label\nx\ny\nx\n")
    spec = {**SMALL, "data": {"source": "csv", "path": str(path), "target": "label"}}
    with pytest.raises(DataError, match=r"d\.csv: the only column is the target 'label'; the model needs at least "
                                        "one feature column"):
        run(spec, out=tmp_path / "runs", quiet=True)
    assert not (tmp_path / "runs").exists()


def test_complex_features_are_refused_without_a_numpy_warning(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2)) + 1j, y=np.array([0, 1, 0, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=r"d\.npz: X is complex \(complex128\); devgrad trains on real features"):
            read_npz(tmp_path / "d.npz")


@pytest.mark.parametrize(("content", "message"), [
    (b"a,b,label\n1,2,x\n", r"not an NPZ file \(an \.npz is a zip archive of arrays"),
    (b"\x93NUMPY\x01\x00", r"a single \.npy array, not an NPZ archive"),
    (b"PK\x03\x04broken", r"a damaged NPZ file"),
])
def test_a_file_named_npz_that_is_not_one_says_so(tmp_path, content, message):
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_npz(path)
    assert "pickle" not in str(info.value)


def test_labels_that_are_nan_are_refused(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)), y=np.array([0.0, np.nan, 1.0]))
    with pytest.raises(DataError, match=r"d\.npz: y\[1\] is nan, not a label"):
        read_npz(tmp_path / "d.npz")


@pytest.mark.parametrize("cell", ["NaN", "nan", "inf", "-Infinity"])
def test_a_nan_or_infinite_target_among_numbers_is_an_error_naming_the_cell(tmp_path, cell):
    """Not a class of its own (which would turn a regression into a classification), as an NPZ
    y holding NaN is not."""
    path = tmp_path / "d.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i / 4}\n" for i in range(40)).replace("3,0.75", f"3,{cell}"))
    for task, loss in (("auto", "mse"), ("auto", "auto"), ("regression", "auto"), ("classification", "auto")):
        with pytest.raises(DataError, match=rf"d\.csv, line 5, column 'y': the target '{cell}' is not a finite "
                                            "number, and the column's other cells are numbers; fill it in or drop"):
            build_splits(_csv_data(path, "y"), seed=0, task=task, loss=loss)


@pytest.mark.parametrize("cell", ["n/a", '"1,000.25"', "?"])
def test_a_text_cell_in_a_column_of_numbers_is_an_error_where_numbers_are_meant(tmp_path, cell):
    """With task regression, or task auto and a regression loss or numbers that are not whole, a
    missing or mistyped value is not silently a class name; task: classification reads text."""
    path = tmp_path / "d.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i % 8 + 0.5}\n" for i in range(40)).replace("\n3,3.5", f"\n3,{cell}"))
    shown = cell.strip('"')
    for task, loss in (("auto", "mse"), ("auto", "auto"), ("regression", "auto")):
        with pytest.raises(DataError, match=rf"d\.csv, line 5, column 'y': '{re.escape(shown)}' is not a number"):
            build_splits(_csv_data(path, "y"), seed=0, task=task, loss=loss)
    with pytest.raises(DataError, match="if the column holds class names, set task: classification"):
        build_splits(_csv_data(path, "y"), seed=0, task="auto", loss="mse")
    assert shown in build_splits(_csv_data(path, "y"), seed=0, task="classification").classes
    whole = tmp_path / "whole.csv"  # whole numbers and a word, with a classification loss: class names
    whole.write_text("a,y\n" + "".join(f"{i},{['1', '2', 'other'][i % 3]}\n" for i in range(40)))
    assert build_splits(_csv_data(whole, "y"), seed=0, task="auto", loss="auto").classes == ["1", "2", "other"]
    with pytest.raises(DataError, match=r"whole\.csv, line 4, column 'y': 'other' is not a number"):
        build_splits(_csv_data(whole, "y"), seed=0, task="auto", loss="mse")


def test_numeric_csv_labels_are_classes_by_value_as_an_npz_gives_them(tmp_path):
    """1, 1.0 and 01 are one class; classes sort by value (5 before 10), so two classes give the
    positive class of an NPZ with the same values; whole numbers are integer classes."""
    path = tmp_path / "d.csv"
    path.write_text("a,label\n" + "".join(f"{i},{['0', '1', '1.0', '01', '+1'][i % 5]}\n" for i in range(40)))
    _, y, classes = read_csv(path, "label")
    assert classes == [0, 1] and y.tolist() == [0 if i % 5 == 0 else 1 for i in range(40)]
    assert all(type(c) is int for c in classes)
    path.write_text("a,label\n" + "".join(f"{i},{[10, 5][i % 2]}\n" for i in range(40)))
    np.savez(tmp_path / "d.npz", X=np.arange(40.0)[:, None], y=np.array([10, 5] * 20))
    assert read_csv(path, "label")[2] == read_npz(tmp_path / "d.npz")[2] == [5, 10]
    np.testing.assert_array_equal(read_csv(path, "label")[1], read_npz(tmp_path / "d.npz")[1])
    path.write_text("a,label\n" + "".join(f"{i},{['cat', '1', '1.0'][i % 3]}\n" for i in range(30)))
    assert read_csv(path, "label")[2] == ["1", "1.0", "cat"]  # any text: every cell is text, as written


# -- targets that are not classes, and classes too rare to learn ----------------------------------

def _csv_data(path, target: str = "label") -> dict:
    return {"source": "csv", "path": str(path), "target": target, "split": {"train": 0.7, "val": 0.15, "test": 0.15},
            "standardize": True}


def test_classification_of_a_continuous_looking_target_is_refused(tmp_path):
    path = tmp_path / "glass.csv"
    rng = np.random.default_rng(0)
    path.write_text("Id,a\n" + "".join(f"{i},{rng.random()}\n" for i in range(1, 215)))
    with pytest.raises(DataError, match=r"column 'Id': 214 distinct numbers in 214 rows look like a continuous "
                                        r"quantity, not classes; to predict it set task: regression"):
        build_splits(_csv_data(path, "Id"), seed=0, task="classification")
    assert build_splits(_csv_data(path, "Id"), seed=0, task="regression").regression


def test_as_many_classes_as_rows_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("label,a\n" + "".join(f"k{i},{i}\n" for i in range(30)))
    with pytest.raises(DataError, match=r"30 classes in 30 rows, 30 of them with a single row: .* training would "
                                        "be meaningless"):
        build_splits(_csv_data(path), seed=0)


def test_few_rows_per_class_and_rare_classes_are_warned_about(tmp_path):
    path = tmp_path / "d.csv"
    rows = [f"k{i % 12},{i}" for i in range(60)] + ["rare,1"]
    path.write_text("label,a\n" + "\n".join(rows) + "\n")
    s = build_splits(_csv_data(path), seed=0)
    assert len(s.warnings) >= 2
    assert "13 classes in 61 rows, about 4.7 rows per class (fewer than 10)" in s.warnings[0]
    assert "class 'rare' (1 row) has fewer rows than the 3 splits, so cannot be in every split" in s.warnings[1]
    common = tmp_path / "common.csv"
    common.write_text("label,a\n" + "".join(f"k{i % 2},{i}\n" for i in range(60)))
    assert build_splits(_csv_data(common), seed=0).warnings == []


def test_class_warnings_reach_stderr_and_train_log(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("label,a\n" + "".join(f"k{i % 12},{i}\n" for i in range(60)))
    spec = {**SMALL, "data": {"source": "csv", "path": str(path), "target": "label"}, "train": {"epochs": 1},
            "plots": {"enabled": False}}
    result = run(spec, out=tmp_path / "runs")
    assert "devgrad: warning: " in capsys.readouterr().err
    log = (result.run_dir / "train.log").read_text()
    assert "data: " in log and "12 classes in 60 rows, about 5.0 rows per class" in log


# -- split sizes --------------------------------------------------------------------------------

def test_an_empty_test_split_gives_the_counts_of_every_split(tmp_path, capsys):
    spec = {**SMALL, "seed": 1, "data": {"source": "blobs", "n_samples": 5, "n_classes": 2},
            "train": {"epochs": 1}, "plots": {"enabled": False}}
    result = run(spec, out=tmp_path)
    out = capsys.readouterr().out
    assert "test" not in result.summary
    assert "the test split is empty (5 rows: 4 train, 1 val, 0 test by data.split 0.7/0.15/0.15)" in out
    assert "data.split.test is 0" not in out
    assert "data: 5 rows: 4 train, 1 val, 0 test" in (result.run_dir / "train.log").read_text()


def test_split_sizes_never_exceed_the_rows():
    assert split_sizes(3, {"train": 0.5, "val": 0.5, "test": 0.0}) == (2, 1, 0)
    assert split_sizes(1000, {"train": 0.7, "val": 0.15, "test": 0.15}) == (700, 150, 150)


@pytest.mark.parametrize(("n", "fractions"), [
    (75, (0.7, 0.3, 0.0)), (25, (0.9, 0.1, 0.0)), (13, (0.5, 0.5, 0.0)), (15, (0.7, 0.3, 0.0)),
    (7, (0.5, 0.0, 0.5)), (9, (1.0, 0.0, 0.0)), (10**7, (0.7, 0.2999995, 0.0)), (11, (0.7, 0.15, 0.15)),
])
def test_a_split_of_fraction_zero_gets_no_rows_and_every_row_has_one_split(n, fractions):
    """Rounding train·n and val·n down at once (both ending in .5) must not leave a row to a test
    split of fraction 0, nor lose or duplicate a row."""
    sizes = split_sizes(n, dict(zip(("train", "val", "test"), fractions)))
    assert sum(sizes) == n and min(sizes) >= 0
    assert [size for size, fraction in zip(sizes, fractions) if fraction == 0] == [0] * fractions.count(0.0)
    slack = 1 + n * abs(1 - sum(fractions))  # data.split may sum to 1 within 1e-6
    assert all(abs(size - fraction * n) <= slack for size, fraction in zip(sizes, fractions))


# -- validate checks big synthetic data without generating it -------------------------------------

def test_describe_a_large_synthetic_set_without_generating_it(monkeypatch):
    @functools.wraps(synthetic.spirals)  # the same options, so its defaults are still known
    def refuse(**kwargs):
        raise AssertionError("generated")

    monkeypatch.setitem(synthetic.GENERATORS, "spirals", refuse)
    data = {"source": "spirals", "n_samples": 50_000_000, "noise": 0.0, "n_classes": 4, "n_features": None,
            "split": {"train": 0.7, "val": 0.15, "test": 0.15}, "standardize": True}
    summary = describe(data, seed=0, task="auto", loss="auto")
    assert (summary.n_samples, summary.n_features, summary.n_classes, summary.task) == (50_000_000, 2, 4,
                                                                                       "classification")
    small = {**data, "n_samples": 100}
    with pytest.raises(AssertionError, match="generated"):  # a small set is generated and checked for real
        describe(small, seed=0)


# -- the command line: exit 2, one message, nothing left on disk -------------------------------------

BAD_DATA = [
    ({"seed": -1}, "seed (line 2): must be >= 0, got -1"),
    ({"data": {"source": "npz", "path": "text.npz"}}, "text.npz: not an NPZ file"),
    ({"data": {"source": "csv", "path": "only_target.csv", "target": "label"}}, "the only column is the target"),
]


def _bad_data_spec(folder, spec: dict):
    (folder / "text.npz").write_text("X,y\n1,2\n")
    (folder / "only_target.csv").write_text("label\nx\ny\n")
    return write_spec(folder, {"name": "bad", **{k: v for k, v in SMALL.items() if k != "name"}, **spec})


@pytest.mark.parametrize(("spec", "message"), BAD_DATA)
def test_bad_data_in_the_cli_is_one_message_and_no_run_folder(tmp_path, capsys, spec, message):
    path = _bad_data_spec(tmp_path, spec)
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "runs")]):
        assert cli_main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("devgrad: error: ") and message in err and "allow_pickle" not in err
    assert not (tmp_path / "runs").exists()


def test_bad_data_in_a_cli_process_exits_2_without_a_traceback(tmp_path):
    spec, message = BAD_DATA[1]
    result = cli("run", _bad_data_spec(tmp_path, spec), "--out", tmp_path / "runs")
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
