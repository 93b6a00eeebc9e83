"""Tracking in MLflow: what a run logs equals its run folder, read back with MlflowClient.

All on 127.0.0.1. Against a local SQLite store and a real ``mlflow server`` (SQLite backend, a
local artifact root) started here: params, every epoch's metrics exactly once (also after kill -9
and resume), tags and artifacts; a search as a parent run with its trials nested; a server that
is down or dies mid-run never stops the run (one warning), and ``devgrad track`` uploads the
run afterwards, a second call adding nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from devgrad.experiment import RunError, resume, run, sweep
from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.tracking import flatten, track
from tests.support.run_helpers import cli, kill_process, wait_until, write_spec

# mlflow itself is imported by the first test that talks to a store (seconds of CPU), not when the
# suite is collected
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                reason="mlflow not installed (the mlflow extra)")

BASE = {"name": "tracked", "seed": 3, "device": "cpu",
        "data": {"source": "classification", "n_samples": 300, "n_features": 8, "n_classes": 2},
        "model": {"hidden": [6], "activation": "tanh"}, "train": {"epochs": 3, "batch_size": 32},
        "plots": {"enabled": False}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``mlflow server`` on 127.0.0.1 with a SQLite backend and a local artifact root."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                   f"sqlite:///{self.folder / 'mlflow.db'}", "--artifacts-destination", str(self.folder / "artifacts"),
                   "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, cwd=self.folder)  # what it writes stays there
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not start")

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)
            self.process = None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    started = Server(tmp_path_factory.mktemp("mlflow"))
    started.start()
    yield started
    started.stop()


def _run_id(run_dir: Path, uri: str) -> str:
    return ckpt.read_json(run_dir / "tracking.json")["mlflow"][uri]["run_id"]


def _client(uri: str):
    import mlflow  # optional: the mlflow extra

    return mlflow.tracking.MlflowClient(tracking_uri=uri)


def _assert_equal_to_folder(client, run_id: str, run_dir: Path) -> None:
    """Params, every epoch's metrics once, tags and artifacts as the run folder holds them."""
    logged = client.get_run(run_id)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    expected = {k: v for k, v in flatten({k: v for k, v in config.items() if k != "tracking"}).items()}
    assert logged.data.params == expected
    rows = ckpt.MetricsLog(run_dir).rows()
    for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
        history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        assert history == [(r["epoch"], pytest.approx(r[key])) for r in rows]
    summary = ckpt.read_json(run_dir / "summary.json")
    for key, value in summary["test"].items():
        assert logged.data.metrics[key] == pytest.approx(value)
    assert logged.data.tags["devgrad.status"] == summary["status"]
    assert logged.data.tags["devgrad.device"] == summary["device"]
    artifacts = {f.path for f in client.list_artifacts(run_id)}
    assert {"config.yaml", "summary.json", "metrics.csv", "report.html", "checkpoints"} <= artifacts


def test_without_mlflow_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(RunError, match=r"mlflow added to its list of extras, e\.g\. pip install -e '\.\[test,mlflow\]"):
        run({**BASE, "tracking": {"mlflow": {"uri": "sqlite:///x.db"}}}, out=tmp_path, quiet=True)
    assert not (tmp_path / "tracked").exists()


def test_a_bad_tracking_block_is_a_spec_problem(tmp_path):
    done = cli("validate", write_spec(tmp_path, {**BASE, "tracking": {"wandb": {}}}))
    assert done.returncode == 2 and "tracking" in done.stderr and "mlflow" in done.stderr


@pytest.mark.slow
def test_an_unreachable_server_costs_one_warning_and_the_run_completes(tmp_path):
    uri = f"http://127.0.0.1:{_free_port()}"  # nobody listens there
    command = ["run", str(write_spec(tmp_path, BASE)), "--out", str(tmp_path / "runs"), "--quiet", "--track",
               f"mlflow={uri}"]
    # MLflow (seconds of CPU to import) is the tracker process's: the training process never imports it
    script = f"import json, sys; from devgrad.cli import main; code = main({command!r}); " \
             "print(json.dumps(sorted(sys.modules))); sys.exit(code)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("MLflow tracking stopped") == 1 and "devgrad track" in done.stderr
    assert not [name for name in json.loads(done.stdout.splitlines()[-1]) if name.split(".")[0] == "mlflow"]
    (run_dir,) = (tmp_path / "runs" / "tracked").iterdir()
    assert ckpt.read_json(run_dir / "summary.json")["status"] == "completed"


@pytest.mark.slow
def test_a_run_and_its_resume_log_every_epoch_once_to_a_local_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a local store keeps its artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # many short epochs: killed after 8, the run is surely still training, on a loaded machine too
    spec = write_spec(tmp_path, {**BASE, "train": {
        "epochs": 300, "batch_size": 64, "checkpoint": {"every": 2, "seconds": 0}}})
    command = [sys.executable, "-m", "devgrad", "run", spec, "--out", tmp_path / "runs", "--quiet", "--track",
               f"mlflow={uri}"]
    process = subprocess.Popen(list(map(str, command)), cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    logs = wait_until("8 epochs of the tracked run", lambda: [
        m for m in (tmp_path / "runs").glob("tracked/*/metrics.jsonl") if len(m.read_text().splitlines()) >= 8],
        process, timeout=240)
    kill_process(process)
    assert len(logs[0].read_text().splitlines()) < 300, "kill -9 came after the last epoch"
    run_dir = logs[0].parent
    result = resume(run_dir, quiet=True)
    assert result.status == "completed"
    _assert_equal_to_folder(_client(uri), _run_id(run_dir, uri), run_dir)
    assert len(_client(uri).search_runs([_client(uri).get_experiment_by_name("tracked").experiment_id])) == 1


@pytest.mark.slow
def test_a_run_on_a_server_then_track_again_adds_nothing(tmp_path, server):
    result = run({**BASE, "tracking": {"mlflow": {"uri": server.uri, "experiment": "runs"}}}, out=tmp_path,
                 quiet=True)
    client = _client(server.uri)
    run_id = _run_id(result.run_dir, server.uri)
    _assert_equal_to_folder(client, run_id, result.run_dir)
    assert client.get_experiment(client.get_run(run_id).info.experiment_id).name == "runs"
    before = (client.get_run(run_id).data, {f.path for f in client.list_artifacts(run_id)})
    assert track(result.run_dir) == run_id
    after = client.get_run(run_id).data
    assert (after.params, after.metrics) == (before[0].params, before[0].metrics)
    assert len(client.get_metric_history(run_id, "val_loss")) == 3
    assert {f.path for f in client.list_artifacts(run_id)} == before[1]


@pytest.mark.slow
def test_a_search_is_a_parent_run_with_its_trials_nested(tmp_path, server):
    pytest.importorskip("optuna")
    spec = {**BASE, "tracking": {"mlflow": {"uri": server.uri, "experiment": "search"}}}
    result = sweep(spec, search="random", trials=2, space={"optimizer.lr": {"loguniform": [1e-3, 1e-1]}},
                   pruner="none", jobs=1, out=tmp_path, quiet=True)
    client = _client(server.uri)
    parent = _run_id(result.sweep_dir, server.uri)
    for line in result.results:
        child = client.get_run(_run_id(Path(line["run_dir"]), server.uri))
        assert child.data.tags["mlflow.parentRunId"] == parent
        assert child.data.params["optimizer.lr"] == json.dumps(line["params"]["optimizer.lr"])
    assert "results.csv" in {f.path for f in client.list_artifacts(parent)}


@pytest.mark.slow
def test_a_server_that_dies_mid_run_then_devgrad_track_uploads_the_run(tmp_path, server, monkeypatch):
    from devgrad.experiment import tracking_service

    each_epoch, opened = tracking_service.MlflowTracker.__call__, []

    def server_dies_after_epoch_2(self, trainer, epoch, row):
        each_epoch(self, trainer, epoch, row)
        if epoch == 2:  # once the tracker has opened the MLflow run, whenever that is: no race
            opened.append(self.service.wait(lambda: self.opened, 120))
            server.stop()

    monkeypatch.setattr(tracking_service.MlflowTracker, "__call__", server_dies_after_epoch_2)
    spec = write_spec(tmp_path, {**BASE, "train": {**BASE["train"], "epochs": 6}})
    try:
        done = cli("run", spec, "--out", tmp_path / "runs", "--quiet", "--track", f"mlflow={server.uri}")
    finally:
        if server.process is None:
            server.start()
    assert opened == [True], "the tracker did not open the MLflow run within 120 s"
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("MLflow tracking stopped") == 1, done.stderr
    (run_dir,) = (tmp_path / "runs" / "tracked").iterdir()
    assert ckpt.read_json(run_dir / "summary.json")["epochs_run"] == 6  # the run went on to its end
    done = cli("track", run_dir, "--uri", server.uri)
    assert done.returncode == 0, done.stderr
    _assert_equal_to_folder(_client(server.uri), _run_id(run_dir, server.uri), run_dir)


@pytest.mark.slow
def test_a_grid_sweep_is_a_parent_run_with_its_runs_nested(tmp_path, server):
    spec = {**BASE, "tracking": {"mlflow": {"uri": server.uri, "experiment": "grid"}}}
    result = sweep(spec, grid={"optimizer.lr": [0.05, 0.01]}, jobs=1, out=tmp_path, quiet=True)
    client = _client(server.uri)
    parent = _run_id(result.sweep_dir, server.uri)
    for line in result.results:
        child = client.get_run(_run_id(Path(line["run_dir"]), server.uri))
        assert child.data.tags["mlflow.parentRunId"] == parent
        assert child.data.params["optimizer.lr"] == json.dumps(line["overrides"]["optimizer.lr"])
    assert {"results.csv", "report.html"} <= {f.path for f in client.list_artifacts(parent)}
    assert client.get_run(parent).info.status == "FINISHED"


def test_the_tracker_logs_each_epoch_of_the_growing_folder_once(tmp_path, monkeypatch):
    """The tracker process reads metrics.jsonl as the run appends to it: each look logs the
    epochs that are new since the last one, in one batch, and stops at a line cut short."""
    from devgrad.experiment import tracking, tracking_service

    batches = []
    monkeypatch.setattr(tracking, "log_epochs", lambda client, run_id, rows, skip: batches.append(rows))
    log = ckpt.MetricsLog(tmp_path)
    run = tracking_service._Run({"run": str(tmp_path), "chosen": {"uri": None, "experiment": "x"}, "cwd": "."})
    for epoch in (1, 2, 3):
        log.append({"epoch": epoch, "train_loss": 1.0 / epoch})
    run.flush()
    run.flush()  # nothing new: no call
    log.append({"epoch": 4, "train_loss": 0.25})
    log.close()
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 5, "train_')  # the run is writing epoch 5
    run.flush()
    assert [[row["epoch"] for row in rows] for rows in batches] == [[1, 2, 3], [4]]


# A stand-in for the tracker process: it answers each open with a failure, each close with its end.
_FAILING_TRACKER = """
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    answer = {"run": message["run"], "opened" if message["do"] == "open" else "closed": True}
    if message["do"] == "open":
        answer["failed"] = "ConnectionError: refused"
    print(json.dumps(answer), flush=True)
"""


def test_a_failing_tracker_costs_one_warning_and_no_thread_of_the_training_process(tmp_path, monkeypatch, capsys):
    """The training process reads the tracker's answers each epoch and at the end, with no thread
    of its own (a run forks processes to draw its figures only from a process without other threads)."""
    import threading

    from devgrad.experiment import tracking_service

    monkeypatch.setattr(tracking_service, "SERVE", _FAILING_TRACKER)
    monkeypatch.setattr(tracking_service, "_SERVICE", [])
    threads = threading.active_count()
    tracker = tracking_service.MlflowTracker(tmp_path, {"uri": None, "experiment": "x"})
    try:
        assert threading.active_count() == threads
        for epoch in (1, 2, 3):
            tracker(None, epoch, {"epoch": epoch})
        tracker.close()
    finally:
        tracker.service.stop()
        tracker.service.process.wait(timeout=60)
    assert tracker.closed and threading.active_count() == threads
    err = capsys.readouterr().err
    assert err.count("MLflow tracking stopped (ConnectionError: refused)") == 1 and "devgrad track" in err


def test_after_a_resume_mlflow_holds_the_summarys_wall_time_and_best_value(tmp_path, monkeypatch):
    """A run stopped after its first epoch and logged, then resumed untracked and logged again by devgrad
    track: its wall time and best value grew, and MLflow's final values are the new ones."""
    monkeypatch.chdir(tmp_path)  # a local store keeps its artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def stop(trainer, epoch, row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run({**BASE, "optimizer": {"name": "adam", "lr": 0.05}}, out=tmp_path / "runs", quiet=True,
            callbacks=[stop])
    (run_dir,) = (tmp_path / "runs" / "tracked").iterdir()
    track(run_dir, uri)
    first = ckpt.read_json(run_dir / "summary.json")
    resume(run_dir, quiet=True)
    summary = ckpt.read_json(run_dir / "summary.json")
    best = f"best_{summary['monitor']}"
    assert summary["wall_seconds"] > first["wall_seconds"] and summary["best"] != first["best"]
    track(run_dir, uri)
    held = _client(uri).get_run(_run_id(run_dir, uri)).data.metrics
    assert held["wall_seconds"] == pytest.approx(summary["wall_seconds"])
    assert held[best] == pytest.approx(summary["best"][summary["monitor"]])
    for key, value in summary["test"].items():
        assert held[key] == pytest.approx(value)
