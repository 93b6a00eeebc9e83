"""devgrad.experiment.checkpoint: the checkpoint policy (when last.npz and best.npz are written)
and the run-folder files, with a controlled clock."""

from __future__ import annotations

import numpy as np

import devgrad as dg
from devgrad.experiment import run
from devgrad.experiment.checkpoint import Checkpointer
from tests.run_helpers import SMALL, only_run_dir


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _state(epoch: int) -> dict:
    return {"model": {"w": np.full(3, float(epoch))}, "epoch": epoch}


def _epoch_on_disk(folder, name):
    return dg.load(folder / name)["epoch"]


def test_last_is_written_at_most_every_n_seconds_and_always_at_the_end(tmp_path):
    clock = Clock()
    policy = Checkpointer(tmp_path, seconds=30, clock=clock)
    for epoch in range(1, 6):  # 10 s per epoch
        clock.now += 10
        policy.epoch_done(_state(epoch), improved=epoch in (1, 2))
    policy._wait()
    # 30 s had passed after epoch 3: last (epoch 3) and the newest best (epoch 2) went to disk then
    assert policy.writes == {"last.npz": 1, "best.npz": 1}
    assert _epoch_on_disk(tmp_path, "last.npz") == 3 and _epoch_on_disk(tmp_path, "best.npz") == 2
    policy.flush()  # the end of the run
    assert _epoch_on_disk(tmp_path, "last.npz") == 5 and _epoch_on_disk(tmp_path, "best.npz") == 2
    assert policy.writes == {"last.npz": 2, "best.npz": 1}  # best had not changed: not rewritten
    policy.close()


def test_a_short_run_writes_each_file_once(tmp_path):
    policy = Checkpointer(tmp_path, seconds=30, clock=Clock())
    for epoch in range(1, 41):
        policy.epoch_done(_state(epoch), improved=True)
    policy.flush()
    policy.close()
    assert policy.writes == {"last.npz": 1, "best.npz": 1}
    assert _epoch_on_disk(tmp_path, "last.npz") == 40


def test_every_n_epochs_and_seconds_zero_write_on_their_own_schedules(tmp_path):
    policy = Checkpointer(tmp_path, seconds=1e9, every=2, save_best=False, clock=Clock())
    for epoch in range(1, 6):
        policy.epoch_done(_state(epoch), improved=True)
    policy.flush()
    assert policy.writes == {"last.npz": 3, "best.npz": 0}  # epochs 2 and 4, then 5 at the end
    assert not (tmp_path / "best.npz").exists()
    every_epoch = Checkpointer(tmp_path / "x", seconds=0, clock=Clock())
    (tmp_path / "x").mkdir()
    for epoch in range(1, 4):
        every_epoch.epoch_done(_state(epoch), improved=False)
    every_epoch.flush()
    assert every_epoch.writes["last.npz"] == 3


def test_the_snapshot_is_a_copy_training_cannot_change(tmp_path):
    """Files are written from host copies, off the training thread: the next epoch's updates must
    not leak into the previous epoch's file."""
    result = run({**SMALL, "train": {**SMALL["train"], "epochs": 3}}, out=tmp_path, quiet=True)
    run_dir = result.run_dir
    last = dg.load(run_dir / "checkpoints" / "last.npz")
    assert last["epoch"] == 3
    rerun = run({**SMALL, "train": {**SMALL["train"], "epochs": 3, "checkpoint": {"seconds": 0}}},
                out=tmp_path / "again", quiet=True)
    again = dg.load(only_run_dir(tmp_path / "again", "small") / "checkpoints" / "last.npz")
    for key, value in last["model"].items():
        np.testing.assert_array_equal(value.numpy(), again["model"][key].numpy())
    assert rerun.summary["final"] == result.summary["final"]


def test_a_diverging_run_keeps_the_last_finite_epoch(tmp_path):
    # lr grows tenfold each epoch (0.01, 0.1, 1, ...): a few finite epochs, then divergence
    spec = {**SMALL, "loss": "mse", "optimizer": {"name": "sgd", "lr": 0.01},
            "schedule": {"name": "exponential", "gamma": 10.0},
            "model": {"hidden": [16], "activation": "relu"}, "train": {"epochs": 40, "batch_size": 8}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "failed"
    rows = result.history
    assert len(rows) >= 2
    state = dg.load(result.run_dir / "checkpoints" / "last.npz")
    assert rows and state["epoch"] == rows[-1]["epoch"]  # the last finite epoch, not an older one
    assert all(np.isfinite(v.numpy()).all() for v in state["model"].values())


def test_an_epochs_snapshot_stays_on_the_device_until_a_file_is_written(tmp_path, monkeypatch):
    """On a GPU a copy to the host waits for the GPU and moves the whole state: the per-epoch
    snapshot is a copy on the run's device, and only a write brings it to the host. Counted
    through the CPU device module's to_host, which every device-to-host copy goes through: a
    6-epoch run makes exactly as many as a 2-epoch run (its two final writes), and they are on
    disk."""
    from devgrad.backend import numpy as cpu_module

    spec = {**SMALL, "data": {"source": "classification", "n_samples": 300, "n_features": 4, "n_classes": 3},
            "loss": "cross_entropy", "model": {"hidden": [8], "activation": "relu"},
            "train": {"epochs": 2, "batch_size": 64, "checkpoint": {"seconds": 1e9}}}
    real = cpu_module.to_host
    copies: list = []

    def counting(array):
        copies.append(getattr(array, "shape", None))
        return real(array)

    monkeypatch.setattr(cpu_module, "to_host", counting)
    counts = {}
    for epochs in (2, 6):
        copies.clear()
        result = run({**spec, "name": f"e{epochs}", "train": {**spec["train"], "epochs": epochs}},
                     out=tmp_path, quiet=True)
        assert result.status == "completed"
        counts[epochs] = [s for s in copies if s]  # the state's arrays (not 0-d numbers)
        assert dg.load(result.run_dir / "checkpoints" / "last.npz")["epoch"] == epochs
    assert len(counts[6]) == len(counts[2]) > 0, counts
