"""devgrad.experiment.checkpoint: the checkpoint policy (when last.npz and best.npz are written)
and the run-folder files, with a controlled clock."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest

import devgrad as dg
from devgrad.experiment import run
from devgrad.experiment.checkpoint import Checkpointer, MetricsLog
from tests.support.run_helpers import SMALL, SMALL_NO_PLOTS, only_run_dir


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


@pytest.mark.slow
def test_the_snapshot_is_a_copy_training_cannot_change(tmp_path):
    """Files are written from host copies, off the training thread: the next epoch's updates must
    not leak into the previous epoch's file."""
    result = run({**SMALL_NO_PLOTS, "train": {**SMALL["train"], "epochs": 3}}, out=tmp_path, quiet=True)
    run_dir = result.run_dir
    last = dg.load(run_dir / "checkpoints" / "last.npz")
    assert last["epoch"] == 3
    rerun = run({**SMALL_NO_PLOTS, "train": {**SMALL["train"], "epochs": 3, "checkpoint": {"seconds": 0}}},
                out=tmp_path / "again", quiet=True)
    again = dg.load(only_run_dir(tmp_path / "again", "small") / "checkpoints" / "last.npz")
    for key, value in last["model"].items():
        np.testing.assert_array_equal(value.numpy(), again["model"][key].numpy())
    assert rerun.summary["final"] == result.summary["final"]


def test_a_diverging_run_keeps_the_last_finite_epoch(tmp_path):
    # lr grows tenfold each epoch (0.01, 0.1, 1, ...): a few finite epochs, then divergence
    spec = {**SMALL_NO_PLOTS, "loss": "mse", "optimizer": {"name": "sgd", "lr": 0.01},
            "schedule": {"name": "exponential", "gamma": 10.0},
            "model": {"hidden": [16], "activation": "relu"}, "train": {"epochs": 40, "batch_size": 8}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "failed"
    rows = result.history
    assert len(rows) >= 2
    state = dg.load(result.run_dir / "checkpoints" / "last.npz")
    assert rows and state["epoch"] == rows[-1]["epoch"]  # the last finite epoch, not an older one
    assert all(np.isfinite(v.numpy()).all() for v in state["model"].values())



def test_an_epoch_whose_weights_blew_up_is_neither_kept_nor_counted_as_the_best(tmp_path):
    """One full-batch step at lr 1e38 leaves epoch 1's training loss finite (it is measured before
    the step) but its weights and outputs inf or NaN: the run diverged at epoch 1, and no file
    holds those weights as 'the last good checkpoint' or the best one."""
    spec = {**SMALL_NO_PLOTS, "data": {"source": "blobs", "n_samples": 200, "n_classes": 3},
            "model": {"hidden": [8]}, "optimizer": {"name": "sgd", "lr": 1e38},
            "train": {"epochs": 5, "batch_size": None}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "failed" and result.history == []
    log = (result.run_dir / "train.log").read_text()
    assert "at epoch 1: the run diverged. The last good checkpoint (none yet) is kept" in log
    assert not (result.run_dir / "checkpoints" / "best.npz").exists()
    assert not (result.run_dir / "checkpoints" / "last.npz").exists()


def test_restore_best_keeps_the_best_weights_in_memory_when_no_best_file_is_written(tmp_path):
    """train.checkpoint.save_best: false writes no best.npz, yet early stopping's restore_best
    still ends the run with the best epoch's weights: the same test metrics as with the file."""
    spec = {**SMALL_NO_PLOTS, "seed": 3, "data": {"source": "spirals", "n_samples": 300, "noise": 0.2},
            "model": {"hidden": [8]}, "optimizer": {"name": "adam", "lr": 0.05},
            "train": {"epochs": 12, "batch_size": 32, "early_stopping": {"patience": 2, "restore_best": True}}}
    summaries = {}
    for save_best in (True, False):
        spec["train"]["checkpoint"] = {"save_best": save_best}
        result = run(spec, out=tmp_path / str(save_best), quiet=True)
        assert "restored the weights of the best epoch" in (result.run_dir / "train.log").read_text()
        assert (result.run_dir / "checkpoints" / "best.npz").exists() is save_best
        summaries[save_best] = result.summary
    assert summaries[False]["best_epoch"] < summaries[False]["epochs_run"]  # something to restore
    assert summaries[False]["test"] == summaries[True]["test"]
    policy = Checkpointer(tmp_path / "policy", seconds=0, save_best=False, clock=Clock())
    (tmp_path / "policy").mkdir()
    policy.epoch_done(_state(1), improved=True)
    policy.epoch_done(_state(2), improved=False)
    policy.flush()
    assert policy.best["epoch"] == 1 and policy.writes["best.npz"] == 0

def test_an_epochs_snapshot_stays_on_the_device_until_a_file_is_written(tmp_path, monkeypatch):
    """On a GPU a copy to the host waits for the GPU and moves the whole state: the per-epoch
    snapshot is a copy on the run's device, and only a write brings it to the host. Counted
    through the CPU device module's to_host, which every device-to-host copy goes through: a
    6-epoch run makes exactly as many as a 2-epoch run (its two final writes), and they are on
    disk."""
    from devgrad.backend import numpy as cpu_module

    spec = {**SMALL_NO_PLOTS, "data": {"source": "classification", "n_samples": 300, "n_features": 4, "n_classes": 3},
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


def _rows(log):
    return [r["epoch"] for r in log.rows()], log.csv.read_text().splitlines()


def test_each_metrics_row_is_in_both_files_when_append_returns(tmp_path):
    """The metrics files stay open while a run appends (one write and flush per epoch): a
    reader sees every finished epoch at once, the CSV header once, and after a rewrite (a
    resume that rewinds) the rows go to the new files, not the replaced ones."""
    log = MetricsLog(tmp_path, ("epoch", "train_loss"))
    for epoch in (1, 2, 3):
        log.append({"epoch": epoch, "train_loss": 1.0 / epoch})
        epochs, lines = _rows(log)
        assert epochs == list(range(1, epoch + 1))
        assert lines[0] == "epoch,train_loss" and len(lines) == epoch + 1
    log.rewrite([{"epoch": 1, "train_loss": 1.0}])
    log.append({"epoch": 2, "train_loss": 0.25})
    assert _rows(log) == ([1, 2], ["epoch,train_loss", "1,1.0", "2,0.25"])
    log.close()
    log.append({"epoch": 3, "train_loss": 0.125})  # appending again opens them again, no second header
    log.close()
    assert _rows(log) == ([1, 2, 3], ["epoch,train_loss", "1,1.0", "2,0.25", "3,0.125"])


def _open_in_this_process(folder) -> list[str]:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd (Linux) to list this process's open files")
    links = []
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            links.append(os.readlink(fd))
    return [link for link in links if link.startswith(str(folder))]


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["completed", "diverged", "stopped"])
def test_a_run_leaves_no_file_of_its_folder_open(tmp_path, ending, monkeypatch):
    """However a run ends, the files it kept open (metrics, train.log) are closed: a process that
    runs many (a sweep, a notebook) does not collect file handles, loggers or writer threads."""
    loggers = {name for name in logging.Logger.manager.loggerDict if name.startswith("devgrad.run")}
    spec = {**SMALL, "train": {**SMALL["train"], "epochs": 3}}
    if ending == "diverged":
        spec = {**spec, "loss": "mse", "optimizer": {"name": "sgd", "lr": 0.01},
                "schedule": {"name": "exponential", "gamma": 10.0}, "model": {"hidden": [16], "activation": "relu"},
                "train": {"epochs": 40, "batch_size": 8}}
    if ending == "stopped":
        from devgrad.experiment.trainer import Trainer

        real = Trainer._train_epoch

        def interrupted(self, epoch):
            if epoch == 2:
                raise KeyboardInterrupt
            return real(self, epoch)

        monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run(spec, out=tmp_path, quiet=True)
    else:
        result = run(spec, out=tmp_path, quiet=True)
        assert result.summary["status"] == ("completed" if ending == "completed" else "failed")
    assert _open_in_this_process(tmp_path) == []
    assert {name for name in logging.Logger.manager.loggerDict if name.startswith("devgrad.run")} == loggers
    assert [t.name for t in threading.enumerate() if t.name.startswith("devgrad-checkpoint")] == []


def _stopped_after_the_last_epoch(tmp_path, monkeypatch, spec: dict) -> Path:
    """A run whose epochs all finished, stopped by Ctrl-C while drawing its plots: resume finishes it."""
    from devgrad.experiment import results

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "draw", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(spec, out=tmp_path, quiet=True)
    monkeypatch.undo()
    return only_run_dir(tmp_path, spec["name"])


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    else:  # bytes flipped inside the archive: a bad CRC
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:])


@pytest.mark.parametrize("how", ["truncated", "empty", "flipped"])
def test_a_damaged_checkpoint_is_named_as_such(tmp_path, how):
    from devgrad.experiment.checkpoint import DamagedCheckpointError, load_checkpoint

    path = tmp_path / "last.npz"
    dg.save({"model": {"w": np.arange(4000.0)}, "epoch": 3}, path)
    _damage(path, how)
    with pytest.raises(DamagedCheckpointError, match=f"{path} is damaged and cannot be read"):
        load_checkpoint(path)


def test_resume_from_a_damaged_last_checkpoint_says_what_to_do_and_changes_nothing(tmp_path, monkeypatch):
    from tests.support.run_helpers import cli

    run_dir = _stopped_after_the_last_epoch(tmp_path, monkeypatch, {**SMALL, "train": {**SMALL["train"], "epochs": 2}})
    _damage(run_dir / "checkpoints" / "last.npz", "truncated")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = cli("resume", run_dir)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{run_dir / 'checkpoints' / 'last.npz'} is damaged" in result.stderr
    assert "mv " in result.stderr and f"devgrad resume {run_dir}" in result.stderr
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


@pytest.mark.slow
def test_a_damaged_best_checkpoint_is_reported_and_the_run_still_finishes(tmp_path, monkeypatch):
    from devgrad.experiment import commands

    es = {"enabled": True, "patience": 100, "restore_best": True}
    spec = {**SMALL, "train": {**SMALL["train"], "epochs": 3, "early_stopping": es}}
    run_dir = _stopped_after_the_last_epoch(tmp_path, monkeypatch, spec)
    _damage(run_dir / "checkpoints" / "best.npz", "truncated")
    finished = commands.resume(run_dir, quiet=True)
    assert finished.status == "completed" and "test" in finished.summary
    summary = json.loads((run_dir / "summary.json").read_text())
    (problem,) = summary["checkpoint_problems"]
    assert "best.npz is damaged" in problem and "last epoch's weights" in problem
    assert "best.npz is damaged" in (run_dir / "train.log").read_text()


def test_resume_with_a_config_that_no_longer_fits_its_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    import yaml

    from devgrad.experiment import RunError, resume

    run_dir = _stopped_after_the_last_epoch(tmp_path, monkeypatch, {**SMALL, "train": {**SMALL["train"], "epochs": 2}})
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["model"]["hidden"] = [5]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    # the spec the run started with (meta.json's) is the first to disagree, naming the key
    with pytest.raises(RunError, match=r"config.yaml was edited .*\(model.hidden: \[6\] -> \[5\]\)"):
        resume(run_dir, quiet=True)
    # without that record, model.json, which records the architecture the weights were trained with
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "spec"}))
    with pytest.raises(RunError, match=r"model.json no longer matches .*\(architecture differ\).*config.yaml changed"):
        resume(run_dir, quiet=True)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "stopped"


def _writer_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("devgrad-checkpoint")]


def test_end_writer_ends_the_thread_and_close_still_raises_a_failed_write(tmp_path, monkeypatch):
    policy = Checkpointer(tmp_path, seconds=30, clock=Clock())
    assert _writer_threads()
    policy.epoch_done(_state(1), improved=True)

    def full_disk(state, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("devgrad.experiment.checkpoint.save", full_disk)
    policy.flush(wait=False)
    policy.end_writer()
    assert not _writer_threads(), "no writer thread is left for a fork to copy"
    with pytest.raises(OSError, match="No space left"):
        policy.close()
