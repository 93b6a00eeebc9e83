"""devgrad.experiment.memory: a run's memory estimated from its spec, and refused before anything
is allocated when it cannot fit. The memory available is stubbed: nothing here allocates much."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

from devgrad.backend import device
from devgrad.cli import main as cli_main
from devgrad.data import build_splits, shapes, synthetic
from devgrad.experiment import RunError, memory, resolve, run
from devgrad.experiment.build import build_model
from devgrad.experiment.task import Task
from tests.support.run_helpers import SMALL, write_spec

GIB = 2**30


@pytest.fixture
def one_gib(monkeypatch):
    """A machine with 1 GiB available."""
    monkeypatch.setattr(memory, "available_memory", lambda: (GIB, "MemAvailable in /proc/meminfo"))


def _spec(**changes):
    return resolve({**SMALL, **changes})


@pytest.mark.parametrize(("model", "data", "loss"), [
    ({"hidden": [6]}, {"source": "triangle", "n_samples": 400}, "auto"),
    ({"hidden": [7, 5], "bias": False}, {"source": "spirals", "n_samples": 300, "n_classes": 4}, "auto"),
    ({"hidden": []}, {"source": "moons", "n_samples": 200}, "cross_entropy"),
])
def test_the_parameters_counted_are_those_of_the_model_built(model, data, loss):
    spec = _spec(model=model, data=data, loss=loss)
    splits = build_splits(spec.data.to_dict(), spec.seed, spec.task, spec.loss.name)
    built = build_model(spec, splits.n_features, Task.from_spec(spec, splits), device("cpu"))
    assert memory.estimate(spec).n_parameters == built.num_parameters()


def test_the_optimizer_state_is_measured_from_the_optimizer():
    assert memory.optimizer_state_per_value(_spec(optimizer={"name": "adam"}))[0] == 2
    assert memory.optimizer_state_per_value(_spec(optimizer={"name": "sgd", "lr": 0.1}))[0] == 0
    assert memory.optimizer_state_per_value(_spec(optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9}))[0] == 1


def test_the_data_part_grows_with_the_rows_and_the_activations_with_the_batch():
    small, large = (memory.estimate(_spec(data={"source": "xor", "n_samples": n})) for n in (10_000, 1_000_000))
    assert 90 < large.data_bytes / small.data_bytes < 110
    assert large.model_bytes == small.model_bytes
    data = {"source": "xor", "n_samples": 200_000}
    batches = [memory.estimate(_spec(data=data, model={"hidden": [512]}, train={"batch_size": rows}))
               for rows in (8192, 65536)]
    assert batches[1].activation_bytes == 8 * batches[0].activation_bytes
    full = memory.estimate(_spec(model={"hidden": [512]}, train={"batch_size": None}))
    assert full.batch_rows == 280  # the whole train split of 400 rows
    float64 = memory.estimate(_spec(model={"hidden": [512]}, dtype="float64"))
    assert float64.model_bytes == 2 * memory.estimate(_spec(model={"hidden": [512]})).model_bytes


def test_file_shapes_come_from_headers(tmp_path, monkeypatch):
    np.savez(tmp_path / "d.npz", X=np.zeros((50, 3, 4), dtype=np.float32), y=np.eye(5)[np.arange(50) % 5])
    shape = shapes.data_shape({"source": "npz", "path": str(tmp_path / "d.npz")})
    assert (shape.n_samples, shape.n_features, shape.n_classes) == (50, 12, 5)
    rows = "".join(f"{i * 0.001:.3f},{i % 3},{i * 7 % 11}\n" for i in range(2000))
    (tmp_path / "d.csv").write_text("a,label,b\n" + rows)
    monkeypatch.setattr(shapes, "CSV_SAMPLE_BYTES", 500)  # estimate the rows from the first lines
    shape = shapes.data_shape({"source": "csv", "path": str(tmp_path / "d.csv")})
    assert shape.n_features == 2 and 1800 < shape.n_samples < 2200
    assert shapes.data_shape({"source": "npz", "path": str(tmp_path / "missing.npz")}) is None


def test_a_model_too_large_is_refused_before_a_run_folder(tmp_path, one_gib):
    spec = {**SMALL, "model": {"hidden": [100_000, 100_000]}}
    with pytest.raises(RunError) as info:
        run(spec, out=tmp_path, quiet=True)
    message = str(info.value)
    assert re.search(r"^small: this run needs about 5\d\d\.\d GiB of memory, more than the 1\.0 GiB available "
                     r"\(MemAvailable in /proc/meminfo\)", message)
    assert "the model (10,000,500,001 parameters" in message
    assert message.endswith("The largest part is the model: make model.hidden [100000, 100000] smaller "
                            "(fewer or narrower layers)")
    assert list(tmp_path.iterdir()) == []


def test_validate_refuses_data_too_large_without_generating_it(tmp_path, capsys, one_gib, monkeypatch):
    @functools.wraps(synthetic.triangle)  # the same options, so its defaults are still known
    def refuse(*args, **kwargs):
        raise AssertionError("generated")

    monkeypatch.setitem(synthetic.GENERATORS, "triangle", refuse)
    path = write_spec(tmp_path, {**SMALL, "data": {"source": "triangle", "n_samples": 1_000_000_000}})
    assert cli_main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "the data (triangle: 1,000,000,000 rows × 2 features)" in err
    assert "The largest part is the data: use fewer data.n_samples" in err


def test_a_full_batch_too_large_says_to_set_a_batch_size(one_gib):
    spec = _spec(data={"source": "xor", "n_samples": 2_000_000}, model={"hidden": [256]},
                 train={"batch_size": None})
    with pytest.raises(RunError, match=r"The largest part is a training batch's activations: set train\.batch_size"):
        memory.check_fits(spec)


def test_a_run_that_fits_passes(one_gib):
    assert memory.check_fits(_spec()).peak_bytes < GIB


def test_available_memory_reads_meminfo_and_a_container_limit(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000000 kB\nMemAvailable:    2000000 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", meminfo)
    monkeypatch.setattr(memory, "CGROUP", tmp_path / "no-cgroup")
    assert memory.available_memory() == (2_048_000_000, "MemAvailable in /proc/meminfo")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("1500000000\n")
    (cgroup / "memory.current").write_text("500000000\n")
    monkeypatch.setattr(memory, "CGROUP", cgroup)
    assert memory.available_memory() == (1_000_000_000, "the memory limit of this container (cgroup memory.max)")
    (cgroup / "memory.max").write_text("max\n")
    assert memory.available_memory()[0] == 2_048_000_000


def test_sizes_read_for_people():
    assert [memory.size_text(b) for b in (512, 3 * 2**20 + 2**19, 37.3 * GIB)] == ["512 B", "3.5 MiB", "37.3 GiB"]
