"""devgrad.experiment.commands: run and resume end to end, driven through the CLI (in this process; in a
subprocess where the process matters: signals, kill -9, a fresh interpreter's output)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

import devgrad as dg
from devgrad.experiment import RunError, SpecError, resolve, run
from tests.support.run_helpers import (
    HAVE_MATPLOTLIB, LONG, SMALL, SMALL_NO_PLOTS, cli, cli_process, only_run_dir, wait_until, weights, write_spec,
)


@pytest.mark.slow
def test_completed_run_folder_has_every_file(tmp_path):
    spec = write_spec(tmp_path, SMALL)
    result = cli("run", spec, "--out", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "runs", "small")
    assert run_dir.name[:8].isdigit() and len(run_dir.name.split("-")) == 3
    expected = ["config.yaml", "meta.json", "metrics.csv", "metrics.jsonl", "summary.json", "train.log",
                "checkpoints/last.npz", "checkpoints/best.npz"]
    if HAVE_MATPLOTLIB:
        expected += ["plots/learning_curves.png", "plots/decision_boundary.png"]
    else:
        assert "plots skipped" in result.stdout and "pip install -e '.[test,plot]'" in result.stdout
    for name in expected:
        assert (run_dir / name).is_file(), name
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["device"] == "cpu" and meta["seed"] == 3
    assert meta["numpy"] == np.__version__ and meta["devgrad"] == dg.__version__ and meta["ended"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 7))
    csv_lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,lr,train_loss") and len(csv_lines) == 7
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 6
    assert 0.5 < summary["test"]["test_accuracy"] <= 1.0 and summary["train_samples_per_second"] > 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["train"]["epochs"] == 6 and config["optimizer"]["betas"] == [0.9, 0.999]  # resolved defaults
    state = dg.load(run_dir / "checkpoints" / "last.npz")
    assert state["epoch"] == 6 and set(state) >= {"model", "optimizer", "scheduler", "rng", "epoch"}
    assert "epoch 6/6" in (run_dir / "train.log").read_text()


NO_PLOTS = {**SMALL, "plots": {"enabled": False}}  # for CLI runs whose pictures no test looks at


@pytest.mark.slow
def test_same_seed_gives_identical_metrics_on_cpu(tmp_path):
    spec = write_spec(tmp_path, NO_PLOTS)
    # one run in a fresh interpreter, one in this process: nothing may depend on the process (its
    # hash seed, what ran in it before)
    assert cli_process("run", spec, "--out", tmp_path / "a", "-q").returncode == 0
    assert cli("run", spec, "--out", tmp_path / "b", "-q").returncode == 0
    a, b = only_run_dir(tmp_path / "a", "small"), only_run_dir(tmp_path / "b", "small")
    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()
    wa, wb = weights(a), weights(b)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
@pytest.mark.skipif(dg.cuda_available(), reason="checks the no-GPU fallback")
def test_auto_device_falls_back_to_cpu_with_a_notice(tmp_path):
    result = cli("run", write_spec(tmp_path, {**NO_PLOTS, "device": "auto"}), "--out", tmp_path / "runs",
                 "--set", "train.epochs=1")
    assert result.returncode == 0
    assert "device auto: CUDA is not available" in result.stderr and "running on the CPU" in result.stderr
    quiet = cli_process("run", write_spec(tmp_path, {**NO_PLOTS, "device": "auto"}), "--out", tmp_path / "quiet",
                        "-q", "--set", "train.epochs=1")  # a fresh interpreter: its imports print nothing either
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""  # --quiet means quiet
    run_dir = only_run_dir(tmp_path / "runs", "small")
    assert "running on the CPU" in (run_dir / "train.log").read_text()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["device"] == "cpu"
    forced = cli("run", write_spec(tmp_path, SMALL), "--device", "cuda", "--out", tmp_path / "runs2")
    assert forced.returncode == 2 and "CUDA is not available" in forced.stderr
    assert "Traceback" not in forced.stderr and not (tmp_path / "runs2").exists()


def _sigint_state() -> str:
    """SIGINT's handler and whether it is blocked, in this process (a child inherits both)."""
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return f"SIGINT handler {signal.getsignal(signal.SIGINT)!r}, blocked {blocked}"


# ``devgrad ARGS`` with SIGINT as a shell started from a terminal leaves it (Python's Ctrl-C
# handler, not blocked). A child inherits an ignored or blocked SIGINT, and the test process can
# be in that state: pytest started as a background job of a non-interactive shell (`pytest &`,
# as some CI runners and scripts do) has SIGINT ignored, its xdist workers and their children
# too, and the run then never saw the Ctrl-C.
_AS_FROM_A_TERMINAL = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                       "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT]); "
                       "from devgrad.cli import main; sys.exit(main(sys.argv[1:]))")


def _rows_written(run_root: Path, name: str, count: int) -> Path | None:
    """The run folder once its metrics.jsonl has ``count`` rows; None before."""
    folders = list((run_root / name).glob("*")) if (run_root / name).exists() else []
    metrics = folders[0] / "metrics.jsonl" if folders else None
    if metrics is not None and metrics.exists() and len(metrics.read_text().splitlines()) >= count:
        return folders[0]
    return None


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> tuple[Path, Path]:
    """(the spec of a long run, its run folder trained straight through), shared by the interruptions."""
    folder = tmp_path_factory.mktemp("long")
    spec = write_spec(folder, {**LONG, "plots": {"enabled": False}})  # weights and metrics are compared
    assert cli("run", spec, "--out", folder / "straight", "-q").returncode == 0
    return spec, only_run_dir(folder / "straight", "long")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, how, long_run):
    spec, reference = long_run
    epochs = LONG["train"]["epochs"]
    inherited = _sigint_state()
    command = [sys.executable, "-c", _AS_FROM_A_TERMINAL, "run", str(spec), "--out", str(tmp_path / "cut"), "-q"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = wait_until("8 epochs of the run", lambda: _rows_written(tmp_path / "cut", "long", 8), proc)
    proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    meta = json.loads((run_dir / "meta.json").read_text())
    if how == "ctrl-c":
        assert proc.returncode == 130 and meta["status"] == "stopped", f"{err} (in the test process: {inherited})"
        assert "devgrad resume" in err or "devgrad resume" in (run_dir / "train.log").read_text()
    else:
        assert meta["status"] == "running"  # killed: nobody could write anything
    done_before = len((run_dir / "metrics.jsonl").read_text().splitlines())
    assert done_before < epochs, "the signal came after the last epoch"

    resumed = cli("resume", run_dir, "-q")
    assert resumed.returncode == 0, resumed.stderr
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1)), "no epoch missing or duplicated"
    csv_epochs = [int(line.split(",")[0]) for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert csv_epochs == list(range(1, epochs + 1))
    assert (run_dir / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    w_resumed, w_ref = weights(run_dir), weights(reference)
    assert all(np.array_equal(w_resumed[k], w_ref[k]) for k in w_ref), "resume must reproduce the weights"
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and len(meta["resumed"]) == 1
    again = cli("resume", run_dir)
    assert again.returncode == 2 and "already completed" in again.stderr


def test_divergence_fails_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
    spec = write_spec(tmp_path, {**SMALL_NO_PLOTS, "loss": "mse", "optimizer": {"name": "sgd", "lr": 1e8},
                                 "model": {"hidden": [16], "activation": "relu"},
                                 "train": {"epochs": 30, "batch_size": 8, "checkpoint": {"every": 1}}})
    result = cli("run", spec, "--out", tmp_path / "runs")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "diverged" in result.stdout
    run_dir = only_run_dir(tmp_path / "runs", "small")
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "failed"
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    if rows:  # every checkpoint written holds finite weights
        state = dg.load(run_dir / "checkpoints" / "last.npz")
        assert all(np.isfinite(v.numpy()).all() for v in state["model"].values())


@pytest.mark.slow
def test_early_stopping_and_restore_best(tmp_path):
    spec = {**SMALL_NO_PLOTS, "train": {"epochs": 200, "batch_size": 32,
                               "early_stopping": {"enabled": True, "monitor": "val_loss", "patience": 3,
                                                  "restore_best": True}},
            "optimizer": {"name": "sgd", "lr": 2.0}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "completed" and result.summary["epochs_run"] < 200
    best = result.summary["best_epoch"]
    assert result.summary["epochs_run"] == best + 3, "stops exactly `patience` epochs after the best"


@pytest.mark.slow
def test_library_run_result_is_picklable_and_folders_never_collide(tmp_path):
    first = run({**SMALL_NO_PLOTS, "train": {"epochs": 1}}, out=tmp_path, quiet=True)
    second = run({**SMALL_NO_PLOTS, "train": {"epochs": 1}}, out=tmp_path, quiet=True)
    assert first.run_dir != second.run_dir and first.run_dir.parent == second.run_dir.parent
    clone = pickle.loads(pickle.dumps(first))
    assert clone.summary == first.summary and clone.history == first.history and clone.status == "completed"


def test_library_errors_are_typed():
    with pytest.raises(SpecError):
        resolve({"data": {"source": "nope"}})
    with pytest.raises(RunError, match="not a run folder"):
        dg.experiment.resume("/nonexistent/run")


@pytest.mark.slow
def test_resume_refuses_a_run_that_is_still_training(tmp_path):
    result = run({**SMALL_NO_PLOTS, "train": {"epochs": 2}}, out=tmp_path, quiet=True)
    meta_path = result.run_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meta.update(status="running", pid=sleeper.pid)
        meta_path.write_text(json.dumps(meta))
        refused = cli("resume", result.run_dir)
        assert refused.returncode == 2 and "still being trained by process" in refused.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    # once that process is gone the folder is stale and resumable
    assert cli("resume", result.run_dir, "-q").returncode == 0


def test_an_unexpected_error_marks_the_run_failed(tmp_path, monkeypatch):
    from devgrad.experiment import trainer

    def explode(self, epoch):
        raise MemoryError("out of device memory")

    monkeypatch.setattr(trainer.Trainer, "_train_epoch", explode)
    with pytest.raises(MemoryError):
        run(SMALL_NO_PLOTS, out=tmp_path, quiet=True)
    run_dir = only_run_dir(tmp_path, "small")
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "failed" and "out of device memory" in meta["error"]
    assert "run failed" in (run_dir / "train.log").read_text()


def test_unreadable_spec_and_unwritable_out_are_clean_errors(tmp_path):
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    result = cli("validate", latin)
    assert result.returncode == 2 and "not UTF-8" in result.stderr and "Traceback" not in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("run", write_spec(tmp_path, SMALL), "--out", blocker / "runs")
    assert result.returncode == 2 and "cannot access" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_without_a_validation_split_the_monitor_falls_back_to_train(tmp_path):
    spec = {**SMALL_NO_PLOTS,
            "data": {"source": "xor", "n_samples": 300, "split": {"train": 0.8, "val": 0.0, "test": 0.2}},
            "train": {"epochs": 3, "early_stopping": {"patience": 1}}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "completed" and result.summary["monitor"] == "train_loss"
    assert all("val_loss" not in row for row in result.history)


@pytest.mark.slow
@pytest.mark.skipif(dg.cuda_available(), reason="checks the no-GPU error")
def test_devgrad_device_is_honoured_by_the_cli_as_by_the_library(tmp_path):
    """DEVGRAD_DEVICE=cuda on a machine without a GPU is an error, never a silent run on the CPU."""
    spec = {k: v for k, v in SMALL_NO_PLOTS.items() if k != "device"}
    result = cli("run", write_spec(tmp_path, spec), "--out", tmp_path / "runs", env={"DEVGRAD_DEVICE": "cuda"})
    assert result.returncode == 2 and "'cuda' was requested but CUDA is not available" in result.stderr
    assert not (tmp_path / "runs").exists()
    explicit = cli("run", write_spec(tmp_path, spec), "--out", tmp_path / "runs", "-q", "--device", "cpu",
                   "--set", "train.epochs=1", env={"DEVGRAD_DEVICE": "cuda"})
    assert explicit.returncode == 0  # --device (or device: in the spec) wins over the environment


@pytest.mark.slow
def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        result = run({**SMALL_NO_PLOTS, "train": {**SMALL["train"], "epochs": 1}}, out=tmp_path, quiet=True)
    finally:
        os.umask(old)
    for name in ("config.yaml", "meta.json", "summary.json", "checkpoints/last.npz"):
        mode = (result.run_dir / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~0o027, (name, oct(mode))



@pytest.mark.slow
def test_ctrl_c_after_the_last_epoch_leaves_a_stopped_run_that_resume_finishes(tmp_path, monkeypatch):
    from devgrad.experiment import commands, results

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "draw", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run({**SMALL, "train": {**SMALL["train"], "epochs": 2}}, out=tmp_path, quiet=True)
    run_dir = only_run_dir(tmp_path, "small")
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "stopped"
    monkeypatch.undo()
    finished = commands.resume(run_dir, quiet=True)
    assert finished.status == "completed" and "test" in finished.summary
    assert [r["epoch"] for r in finished.history] == [1, 2]


@pytest.mark.slow
def test_an_empty_test_split_is_said_not_silent(tmp_path, capsys):
    spec = {**SMALL_NO_PLOTS, "data": {**SMALL["data"], "split": {"train": 0.8, "val": 0.2, "test": 0.0}},
            "train": {**SMALL["train"], "epochs": 1}}
    result = run(spec, out=tmp_path)
    assert "test" not in result.summary
    assert "the test split is empty" in capsys.readouterr().out


def test_a_killed_process_left_as_a_zombie_is_not_still_running():
    """A sweep's worker killed with its parent can stay a zombie until reaped: resume must not
    wait for it (os.kill(pid, 0) alone says it is alive)."""
    import socket

    from devgrad.experiment.rundir import still_running

    pid = os.fork()
    if pid == 0:  # the child exits at once and is not reaped yet
        os._exit(0)
    try:
        time.sleep(0.3)
        assert not still_running({"pid": pid, "host": socket.gethostname()})
        assert still_running({"pid": os.getppid(), "host": socket.gethostname()})  # a live process is
    finally:
        os.waitpid(pid, 0)


def _disk_full_for_checkpoints(monkeypatch):
    """Every .npz write fails as on a full disk, before the file is named (the writer names it)."""
    import errno

    from devgrad import io as devgrad_io

    real = devgrad_io._write_durably

    def full(fd, payload):
        if payload[:2] == b"PK":  # a checkpoint (an NPZ is a zip archive)
            os.close(fd)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, payload)

    monkeypatch.setattr(devgrad_io, "_write_durably", full)


def test_a_full_disk_names_the_file_and_the_run_still_writes_its_summary(tmp_path, monkeypatch):
    _disk_full_for_checkpoints(monkeypatch)
    with pytest.raises(RunError) as info:
        run({**SMALL_NO_PLOTS, "train": {**SMALL["train"], "epochs": 6, "checkpoint": {"every": 1}}}, out=tmp_path,
            quiet=True)
    run_dir = only_run_dir(tmp_path, "small")
    message = str(info.value)
    assert f"cannot write {run_dir / 'checkpoints'}" in message and "No space left on device" in message
    assert f"devgrad resume {run_dir}" in message
    summary = json.loads((run_dir / "summary.json").read_text())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert summary["status"] == meta["status"] == "failed" and "No space left on device" in summary["error"]
    assert not list((run_dir / "checkpoints").iterdir()), "no half-written checkpoint is left"


def test_a_run_whose_folder_cannot_be_set_up_leaves_nothing_behind(tmp_path, monkeypatch):
    import errno

    from devgrad import io as devgrad_io

    def full(fd, payload):
        os.close(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(devgrad_io, "_write_durably", full)
    with pytest.raises(OSError) as info:
        run(SMALL, out=tmp_path / "runs", quiet=True)
    assert info.value.filename.endswith("config.yaml")
    assert not (tmp_path / "runs").exists(), "no empty or half-made run folder, nor the folders made for it"


@pytest.mark.slow
def test_after_a_resume_wall_seconds_is_the_total_and_this_segment_is_separate(tmp_path, monkeypatch):
    from devgrad.experiment import commands, results

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "draw", interrupted)
    with pytest.raises(KeyboardInterrupt, match="continue with: devgrad resume"):
        run({**SMALL, "train": {**SMALL["train"], "epochs": 3}}, out=tmp_path, quiet=True)
    run_dir = only_run_dir(tmp_path, "small")
    first = json.loads((run_dir / "summary.json").read_text())
    monkeypatch.undo()
    finished = commands.resume(run_dir, quiet=True).summary
    segments = json.loads((run_dir / "meta.json").read_text())["segments"]
    assert finished["segments"] == len(segments) == 2 and segments[0]["wall_seconds"] == first["wall_seconds"]
    assert finished["wall_seconds_this_segment"] == segments[1]["wall_seconds"]
    assert finished["wall_seconds"] == pytest.approx(first["wall_seconds"] + finished["wall_seconds_this_segment"],
                                                     abs=2e-3)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device", "plots/learning_curves.png"),
                                   RuntimeError("a plotting bug")])
def test_a_failure_after_the_last_epoch_leaves_a_failed_run_not_a_running_one(tmp_path, monkeypatch, error):
    from devgrad.experiment import results

    def fails(*args):
        raise error

    monkeypatch.setattr(results, "draw", fails)
    with pytest.raises(RunError if isinstance(error, OSError) else RuntimeError) as info:
        run({**SMALL, "train": {**SMALL["train"], "epochs": 2}}, out=tmp_path, quiet=True)
    run_dir = only_run_dir(tmp_path, "small")
    summary = json.loads((run_dir / "summary.json").read_text())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert summary["status"] == meta["status"] == "failed" and str(error.args[-1]) in summary["error"]
    assert summary["epochs_run"] == 2 and (run_dir / "checkpoints" / "last.npz").exists()
    if isinstance(error, OSError):
        assert "cannot write plots/learning_curves.png" in str(info.value) and f"devgrad resume {run_dir}" in str(
            info.value)


def test_a_killed_segment_is_timed_to_its_last_write_not_to_the_resume(tmp_path):
    """The hour a killed run lay dead before its resume is no training time."""
    def stop(trainer, epoch, row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run({**SMALL_NO_PLOTS, "train": {**SMALL["train"], "epochs": 2, "checkpoint": {"every": 1}}}, out=tmp_path,
            quiet=True, callbacks=[stop])
    run_dir = only_run_dir(tmp_path, "small")
    # as a kill -9 leaves it: meta.json says running, no segment times, no summary.json; its last
    # write 2 s after it started, an hour ago (the pid is this process's, which is not another one training it)
    meta = json.loads((run_dir / "meta.json").read_text())
    started = time.time() - 3600
    meta.update(status="running", pid=os.getpid(), started=datetime.fromtimestamp(started).astimezone().isoformat())
    meta.pop("segments", None)
    meta.pop("ended", None)
    (run_dir / "meta.json").write_text(json.dumps(meta))
    (run_dir / "summary.json").unlink()
    for name in ("train.log", "metrics.jsonl", "checkpoints/last.npz"):
        os.utime(run_dir / name, (started + 2, started + 2))
    finished = dg.experiment.resume(run_dir, quiet=True).summary
    killed = json.loads((run_dir / "meta.json").read_text())["segments"][0]
    assert killed["wall_seconds"] == pytest.approx(2.0, abs=0.01)
    assert finished["wall_seconds"] == pytest.approx(2.0 + finished["wall_seconds_this_segment"], abs=0.01)
