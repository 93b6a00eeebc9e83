"""Datasets: synthetic generators, file formats, splits, standardisation, the device DataLoader."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from devgrad.data import DataError, DataLoader, build_splits, synthetic
from devgrad.experiment import run
from tests.helpers import block_import
from tests.run_helpers import SMALL
from devgrad.data.files import read_csv, read_idx, read_idx_pair, read_npz

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
    with pytest.raises(DataError, match=r"line 3: 'foo' is not a number"):
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


def test_sklearn_digits_loads_without_download():
    pytest.importorskip("sklearn")
    data = {"source": "sklearn:digits", "split": {"train": 0.7, "val": 0.15, "test": 0.15}, "standardize": True}
    s = build_splits(data, seed=0)
    assert s.n_features == 64 and s.n_classes == 10


def test_missing_scikit_learn_is_a_clear_error(tmp_path, monkeypatch):
    block_import(monkeypatch, "sklearn")
    with pytest.raises(DataError, match=r"needs scikit-learn: pip install 'devgrad\[sklearn\]'"):
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
