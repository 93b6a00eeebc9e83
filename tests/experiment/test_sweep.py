"""devgrad.experiment.sweep and ``devgrad sweep``: grids of runs on a local process pool or Dask.

All on 127.0.0.1. Parallel runs give the metrics serial runs give for the same seeds, on at
least two worker processes; a failing point is recorded while the others complete; an external
``dask scheduler`` and ``dask worker`` are reached through ``--address``; kill -9 of a sweep then
``--resume`` trains every grid point exactly once in total; bad grids exit 2 before anything runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from devgrad.experiment import RunError, SpecError, run
from devgrad.experiment.sweeps import parse_grid_option, parse_grid_options, resume_sweep, sweep
from tests.support.run_helpers import HAVE_MATPLOTLIB, ROOT, SMALL, cli, wait_until, write_spec

# no run's pictures (a sweep's own are drawn all the same): each run is mostly its training, and the
# sweeps are what is tested
BASE = {**SMALL, "name": "grid", "data": {"source": "classification", "n_samples": 400, "n_features": 8,
                                         "n_classes": 2}, "train": {"epochs": 3, "batch_size": 32},
        "plots": {"enabled": False}}
GRID = {"optimizer.lr": [0.05, 0.01]}


def _lines(sweep_dir):
    return [json.loads(t) for t in (sweep_dir / "results.jsonl").read_text().splitlines()]


def _serial(sweep_dir, tmp_path):
    """Each point's spec (as the sweep resolved it) run alone, in order, in this process."""
    points = json.loads((sweep_dir / "points.json").read_text())
    return {p["index"]: run(p["spec"], out=tmp_path / "serial", quiet=True).summary for p in points}


def _same_metrics(results, serial):
    assert len(results) == len(serial)
    for line in results:
        alone = serial[line["index"]]
        assert line["status"] == "completed" and line["final"] == alone["final"] and line["test"] == alone["test"]


@pytest.mark.slow
def test_a_local_pool_gives_the_serial_runs_metrics_on_two_workers(tmp_path, capsys):
    result = sweep(BASE, grid=GRID, seeds=2, jobs=2, out=tmp_path / "sweeps", quiet=False)
    assert "local process pool, 2 workers" in capsys.readouterr().out
    assert result.status == "completed" and len(result.results) == 4
    assert [r["seed"] for r in result.results] == [3, 4, 3, 4]  # seeds derived from the base seed
    # which worker takes which run is the scheduler's: one may finish these short runs before the other starts
    assert all(r["worker"].split(":")[1] != str(os.getpid()) for r in result.results)  # not in this process
    _same_metrics(result.results, _serial(result.sweep_dir, tmp_path))
    folder = result.sweep_dir
    assert folder.parent.name == "grid" and folder.parent.parent == tmp_path / "sweeps"
    resolved = yaml.safe_load((folder / "sweep.yaml").read_text())
    assert resolved["grid"] == GRID and resolved["seeds"] == 2 and len(resolved["points"]) == 4
    rows = (folder / "results.csv").read_text().splitlines()
    assert rows[0].startswith("index,optimizer.lr,seed,status,best_val_loss") and len(rows) == 5
    values = [float(r.split(",")[4]) for r in rows[1:]]
    assert values == sorted(values)  # sorted by the monitored metric (val_loss: lower first)
    assert sorted(p.name for p in (folder / "runs").iterdir()) == [
        "000-lr=0.05-seed3", "001-lr=0.05-seed4", "002-lr=0.01-seed3", "003-lr=0.01-seed4"]
    assert result.best["index"] == int(rows[1].split(",")[0])
    if HAVE_MATPLOTLIB:
        assert (folder / "plots" / "metric_by_optimizer.lr.png").stat().st_size > 5000
        assert (folder / "plots" / "best_runs.png").stat().st_size > 5000


@pytest.mark.slow
def test_a_dask_local_cluster_gives_the_same_metrics(tmp_path):
    pytest.importorskip("dask.distributed")
    result = sweep(BASE, grid=GRID, jobs=2, executor="dask", out=tmp_path / "sweeps", quiet=True)
    assert result.status == "completed"
    assert len({r["worker"] for r in result.results}) >= 2
    _same_metrics(result.results, _serial(result.sweep_dir, tmp_path))


@pytest.mark.slow
def test_a_failing_point_is_recorded_and_the_others_complete(tmp_path):
    spec = {**BASE, "model": {"hidden": [6], "activation": "relu"}, "optimizer": {"name": "sgd", "lr": 0.1}}
    result = sweep(spec, grid={"optimizer.lr": [0.1, 1e20, 0.05]}, jobs=2, out=tmp_path, quiet=True)
    by_lr = {r["overrides"]["optimizer.lr"]: r for r in result.results}
    assert by_lr[1e20]["status"] == "failed" and "diverged" in by_lr[1e20]["error"]
    assert by_lr[0.1]["status"] == by_lr[0.05]["status"] == "completed"
    assert result.status == "completed"  # the sweep ran every point
    stopped = sweep(spec, grid={"optimizer.lr": [1e20, 1e21, 1e22, 1e23]}, jobs=1, out=tmp_path, quiet=True,
                    fail_fast=True)
    assert stopped.status == "stopped" and len(stopped.results) < 4


@pytest.mark.slow
def test_bad_grids_exit_2_before_anything_runs(tmp_path):
    spec = write_spec(tmp_path, BASE)
    for args, message in ((["--grid", "optimizer.lr=0.1,abc"], "optimizer.lr (from --grid): must be like 0.001"),
                          (["--grid", "optimzer.lr=0.1"], "did you mean 'optimizer'"),
                          (["--grid", "model.hidden=[4],[-1]"], "model.hidden (from --grid)"),
                          (["--grid", "optimizer.lr"], "expected key.path=value1,value2"),
                          (["--seeds", "0"], "sweep.seeds: must be a whole number >= 1")):
        result = cli("sweep", spec, *args, "--out", tmp_path / "sweeps")
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "sweeps").exists()
    with pytest.raises(SpecError, match="2 problems"):  # every bad point at once
        sweep(BASE, grid={"optimizer.lr": ["x", "y"]}, out=tmp_path / "sweeps")
    with_block = write_spec(tmp_path, {**BASE, "sweep": {"grid": GRID}}, "block.yaml")
    result = cli("run", with_block, "--out", tmp_path / "runs")
    assert result.returncode == 2 and "devgrad sweep" in result.stderr


def test_a_grid_key_given_twice_is_refused_not_overwritten(tmp_path):
    with pytest.raises(SpecError, match=r"--grid train.epochs is given twice.*--grid train.epochs=2,3,4"):
        parse_grid_options(["train.epochs=2,3", "optimizer.lr=0.1", "train.epochs=4"])
    assert parse_grid_options(["train.epochs=2,3", "optimizer.lr=0.1"]) == {"train.epochs": [2, 3],
                                                                           "optimizer.lr": [0.1]}
    result = cli("sweep", write_spec(tmp_path, BASE), "--grid", "train.epochs=2,3", "--grid", "train.epochs=4",
                 "--out", tmp_path / "sweeps")
    assert result.returncode == 2 and "given twice" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "sweeps").exists()


def test_a_seed_axis_gives_each_run_its_seed_and_refuses_seeds_beside_it(tmp_path):
    """--seeds never overrides the grid's seeds; both at once is an error, not a guess."""
    from devgrad.experiment.grid import expand, load_base, resolve_points

    base, _, _ = load_base({**BASE, "seed": 7})
    points = resolve_points(base, expand({"seed": [3, 4], "optimizer.lr": [0.05]}, 1, 7), threads_given=False)
    assert [(p["seed"], p["spec"]["seed"]) for p in points] == [(3, 3), (4, 4)]
    with pytest.raises(SpecError, match=r"grid axis seed gives every point its seed, and seeds 2 \(--seeds"):
        sweep(BASE, grid={"seed": [3, 4]}, seeds=2, out=tmp_path / "sweeps")
    result = cli("sweep", write_spec(tmp_path, BASE), "--grid", "seed=3,4", "--seeds", "3", "--out",
                 tmp_path / "sweeps")
    assert result.returncode == 2 and "drop the seed axis and use --seeds N" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "sweeps").exists()


def test_grid_options_split_at_top_level_commas():
    assert parse_grid_option("model.hidden=[16],[64,64]") == ("model.hidden", [[16], [64, 64]])
    assert parse_grid_option("optimizer.lr=1e-3, .5,2") == ("optimizer.lr", [0.001, 0.5, 2])
    assert parse_grid_option("model.activation=relu,'tanh'") == ("model.activation", ["relu", "tanh"])


@pytest.mark.slow
def test_a_spec_sweep_block_and_the_cli(tmp_path):
    spec = write_spec(tmp_path, {**BASE, "sweep": {"grid": {"model.hidden": [[4], [8, 8]]}, "seeds": 1}})
    result = cli("sweep", spec, "--grid", "optimizer.lr=0.05,0.01", "--jobs", "2", "--out", tmp_path / "sweeps",
                 "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["#", "status", "val_loss"]  # quiet: the table only
    folder = next((tmp_path / "sweeps" / "grid").iterdir())
    assert len(_lines(folder)) == 4
    want = [{"model.hidden": h, "optimizer.lr": lr} for h in ([4], [8, 8]) for lr in (0.05, 0.01)]
    assert {json.dumps(r["overrides"], sort_keys=True) for r in _lines(folder)} == {
        json.dumps(w, sort_keys=True) for w in want}


def test_validate_checks_every_point_of_a_sweep_spec_as_sweep_does_and_runs_nothing(tmp_path):
    grid = write_spec(tmp_path, {**BASE, "sweep": {"grid": {"model.hidden": [[4], [8, 8]], **GRID}, "seeds": 2}})
    result = cli("validate", grid)
    assert result.returncode == 0, result.stderr
    assert "valid (grid: a grid sweep of 8 runs over model.hidden, optimizer.lr, 2 seeds each)" in result.stdout
    bad = write_spec(tmp_path, {**BASE, "sweep": {"grid": {"optimizer.lr": [0.05, -1]}}}, "bad.yaml")
    result = cli("validate", bad)
    assert result.returncode == 2 and "grid point optimizer.lr=-1: optimizer.lr (from --grid)" in result.stderr
    assert "grid point optimizer.lr=0.05" not in result.stderr and "devgrad run" not in result.stderr
    search = {"trials": 3, "space": {"optimizer.lr": {"loguniform": [1e-4, 0.1]}}}
    result = cli("validate", write_spec(tmp_path, {**BASE, "sweep": {"search": search}}, "search.yaml"))
    assert result.returncode == 0, result.stderr
    assert "a search of 3 trials (tpe sampler, median pruner) over optimizer.lr" in result.stdout
    result = cli("validate", write_spec(tmp_path, {**BASE, "sweep": {"search": {**search, "storage": "x"}}}, "s.yaml"))
    assert result.returncode == 2 and "sweep.search.storage: unknown key" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "s.yaml", "search.yaml", "spec.yaml"]


KILLED_EPOCHS = 100


@pytest.mark.slow
def test_kill_9_then_resume_trains_every_point_exactly_once(tmp_path):
    # many short epochs: when the first run has finished, the others are surely still training
    long = {**BASE,
            "train": {"epochs": KILLED_EPOCHS, "batch_size": 32, "checkpoint": {"seconds": 0}}}
    spec = write_spec(tmp_path, long)
    proc = subprocess.Popen([sys.executable, "-m", "devgrad", "sweep", str(spec), "--grid",
                             "optimizer.lr=0.05,0.04,0.03,0.02,0.01", "--jobs", "2", "--out", str(tmp_path / "sweeps"),
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    folder = wait_until("a finished run of the sweep", lambda: next(
        (f.parent for f in (tmp_path / "sweeps" / "grid").glob("*/results.jsonl") if f.read_text().count("\n")),
        None), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()  # waits, and closes its stderr pipe
    time.sleep(1.0)  # the pool's workers die with their parent (PR_SET_PDEATHSIG)
    before = {r["index"] for r in _lines(folder)}
    assert 1 <= len(before) < 5, "kill -9 came too late to interrupt the sweep"
    result = cli("sweep", "--resume", folder, "--jobs", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    lines = _lines(folder)
    assert sorted(r["index"] for r in lines) == [0, 1, 2, 3, 4]  # each point recorded exactly once
    assert all(r["status"] == "completed" for r in lines)
    for r in lines:  # and trained once: every epoch exactly once in its run's metrics
        with open(f"{r['run_dir']}/metrics.jsonl") as fh:
            epochs = [json.loads(t)["epoch"] for t in fh]
        assert epochs == list(range(1, KILLED_EPOCHS + 1)), (r["index"], epochs)
    assert {r["index"] for r in resume_sweep(folder, quiet=True).results} == {0, 1, 2, 3, 4}  # nothing left to run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_an_external_dask_scheduler_and_worker_through_address(tmp_path):
    pytest.importorskip("dask.distributed")
    dask_cli = [sys.executable, "-m", "dask"]  # this interpreter's Dask (a `dask` on PATH may be another one's)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    scheduler = subprocess.Popen([*dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = subprocess.Popen([*dask_cli, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                               "--resources", "GPU=1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        spec = write_spec(tmp_path, BASE)
        result = cli("sweep", spec, "--grid", "optimizer.lr=0.05,0.01", "--executor", "dask", "--address", address,
                     "--gpus-per-run", "1", "--out", tmp_path / "sweeps", "--quiet", timeout=180)
        assert result.returncode == 0, result.stderr
        folder = next((tmp_path / "sweeps" / "grid").iterdir())
        lines = _lines(folder)
        assert len(lines) == 2 and all(r["status"] == "completed" for r in lines)
        pids = {r["worker"].split(":")[1] for r in lines}
        assert str(scheduler.pid) not in pids and str(os.getpid()) not in pids
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
        for proc in (worker, scheduler):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow
def test_a_dask_client_given_by_the_user_runs_the_sweep(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        result = sweep(BASE, grid=GRID, executor=client, out=tmp_path, quiet=True)
        assert result.status == "completed" and len(result.results) == 2
        assert client.status == "running"  # the user's client is left open for them


def test_without_dask_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails as if not installed
    from devgrad.experiment import RunError

    with pytest.raises(RunError, match=r"dask added to its list of extras, e\.g\. pip install -e '\.\[test,dask\]'"):
        sweep(BASE, grid=GRID, executor="dask", out=tmp_path / "sweeps", quiet=True)
    assert not (tmp_path / "sweeps").exists()  # refused before any folder
    result = cli("sweep", write_spec(tmp_path, BASE), "--executor", "local", "--address", "tcp://127.0.0.1:1",
                 "--out", tmp_path)
    assert result.returncode == 2 and "--address is for --executor dask" in result.stderr


def test_a_run_folder_killed_before_its_run_started_is_reused_and_nothing_else_is(tmp_path):
    from devgrad.experiment.sweep_point import clear_unstarted

    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / ".config.yaml.ab12cd.tmp").write_text("")  # an atomic write cut short by kill -9
    (killed / "config.yaml").write_text("name: x\n")
    (killed / "plots").mkdir()
    clear_unstarted(killed)
    assert not any(killed.iterdir())
    trained = tmp_path / "trained"
    (trained / "checkpoints").mkdir(parents=True)
    (trained / "checkpoints" / "last.npz").write_bytes(b"weights")
    (trained / "config.yaml").write_text("name: x\n")
    clear_unstarted(trained)
    assert (trained / "checkpoints" / "last.npz").read_bytes() == b"weights"


def test_a_results_line_cut_short_by_a_kill_does_not_swallow_the_next(tmp_path):
    from devgrad.experiment.sweepdir import append_line, read_results

    (tmp_path / "results.jsonl").write_text('{"index": 0, "status": "completed"}\n{"index": 1, "sta')
    append_line(tmp_path / "results.jsonl", {"index": 2, "status": "completed"})
    assert [r["index"] for r in read_results(tmp_path)] == [0, 2]


def test_each_progress_line_gives_the_runs_own_value_and_the_best_so_far(capsys):
    """A finished run's line says what that run reached, then the best so far and which run
    holds it: 'best val_loss 0.07' after a run that reached 0.11 read as that run's value."""
    from devgrad.experiment.sweep_progress import Progress

    progress = Progress(total=3, initial=0, quiet=False, monitor=("val_loss", "min"), where="test")
    for index, status, value in ((0, "failed", None), (1, "completed", 0.0677), (2, "completed", 0.1125)):
        progress.record({"index": index, "status": status, "wall_seconds": 1.5,
                         "best": {"val_loss": value} if value is not None else None,
                         "final": {"val_loss": value} if value is not None else None})
    lines = capsys.readouterr().out.splitlines()[1:]
    assert lines == ["run 0 failed in 1.5s (no completed run yet)",
                     "run 1 completed in 1.5s: val_loss 0.0677 (best so far 0.0677, run 1)",
                     "run 2 completed in 1.5s: val_loss 0.1125 (best so far 0.0677, run 1)"]


@pytest.mark.slow
def test_a_web_address_for_dask_is_refused_before_any_folder(tmp_path):
    pytest.importorskip("dask.distributed")
    result = cli("sweep", write_spec(tmp_path, BASE), "--executor", "dask", "--address", "http://x",
                 "--out", tmp_path / "sweeps")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--address http://x: Dask does not speak http://" in result.stderr and "tcp://HOST:8786" in result.stderr
    assert not (tmp_path / "sweeps").exists()


def test_an_unreachable_scheduler_leaves_no_sweep_folder(tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")

    def no_answer(address, timeout=None):
        raise OSError(f"Timed out trying to connect to {address}")

    monkeypatch.setattr(distributed, "Client", no_answer)
    with pytest.raises(RunError, match="no Dask scheduler answered"):
        sweep(BASE, grid=GRID, executor="dask", address="tcp://127.0.0.1:9", out=tmp_path / "sweeps", quiet=True)
    assert not (tmp_path / "sweeps").exists()


def test_a_sweep_folder_that_cannot_be_written_is_taken_away(tmp_path, monkeypatch):
    import errno

    from devgrad import io as devgrad_io

    def full(fd, payload):
        os.close(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(devgrad_io, "_write_durably", full)
    with pytest.raises(OSError, match="No space left on device") as info:
        sweep(BASE, grid=GRID, out=tmp_path / "sweeps", quiet=True)
    assert info.value.filename.endswith("sweep.yaml")
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.slow
def test_sweep_yaml_has_no_anchors_and_sweep_takes_set_and_device(tmp_path):
    tiny = {**BASE, "data": {**BASE["data"], "n_samples": 200}}
    spec = write_spec(tmp_path, tiny)
    result = cli("sweep", spec, "--grid", "optimizer.lr=0.05", "--seeds", "2", "--set", "train.epochs=1",
                 "--device", "cpu", "--jobs", "1", "--out", tmp_path / "sweeps", "--quiet")
    assert result.returncode == 0, result.stderr
    folder = next((tmp_path / "sweeps" / "grid").iterdir())
    text = (folder / "sweep.yaml").read_text()
    assert "&id" not in text and "*id" not in text, text  # the seeds' shared overrides are written out
    for line in _lines(folder):
        config = yaml.safe_load((Path(line["run_dir"]) / "config.yaml").read_text())
        assert config["train"]["epochs"] == 1 and config["device"] == "cpu"
    refused = cli("sweep", "--resume", folder, "--set", "train.epochs=2")
    assert refused.returncode == 2 and "--resume continues a sweep folder as it was defined" in refused.stderr


def test_a_resumed_sweep_says_what_it_will_run_and_does_not_list_old_results(capsys):
    from devgrad.experiment.sweep_progress import Progress

    old = {"index": 0, "status": "completed", "best": {"val_loss": 0.5}, "final": None, "wall_seconds": 1.0}
    progress = Progress(4, 1, quiet=False, monitor=("val_loss", "min"), where="a pool", resumed=True)
    progress.record(old, new=False)
    out = capsys.readouterr().out
    assert out == "sweep --resume: 3 of 4 runs to run (1 finished before) on a pool\n"
    progress.record({**old, "index": 2, "best": {"val_loss": 0.7}})
    assert "run 2 completed" in capsys.readouterr().out and progress.best == (0.5, 0)


EPOCHS_PAST_THE_SIGNAL = 1000  # a tiny run's epoch takes a few milliseconds: seconds of margin on a loaded machine


def _two_runs_training(tmp_path: Path) -> bool:
    """Have the sweep's first two runs each written 2 epochs, and neither finished? A third run
    started or a results line means one did: the Ctrl-C would come too late, which fails at once."""
    runs = sorted((tmp_path / "sweeps").glob("grid/*/runs/*"))
    finished = [line for f in (tmp_path / "sweeps").glob("grid/*/results.jsonl") for line in f.read_text().splitlines()]
    assert len(runs) <= 2 and not finished, f"a run finished before the Ctrl-C: {runs}; give it more epochs"
    metrics = [r / "metrics.jsonl" for r in runs]
    return len(metrics) == 2 and all(m.exists() and len(m.read_text().splitlines()) >= 2 for m in metrics)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "dask"])
def test_ctrl_c_stops_a_sweep_at_once_and_resume_finishes_it(tmp_path, executor):
    """The local pool's Ctrl-C goes to the sweep's process only (it stops its workers itself); the
    Dask sweep's goes to every process of the sweep, as a terminal's does: the LocalCluster's
    workers are not killed by it, and their runs stop with a checkpoint and a line."""
    if executor == "dask":
        pytest.importorskip("dask.distributed")
    # Many short epochs: a run lasts hundreds of times as long as the 2 epochs waited for, so both
    # are surely still training when the Ctrl-C comes, on a loaded machine too; a stopped run's
    # checkpoint is written as it stops (no checkpoint every epoch needed)
    long = {**BASE, "data": {**BASE["data"], "n_samples": 200},
            "train": {"epochs": EPOCHS_PAST_THE_SIGNAL, "batch_size": 32}}
    spec = write_spec(tmp_path, long)
    terminal = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "from devgrad.cli import main; sys.exit(main(sys.argv[1:]))")  # Ctrl-C as from a terminal
    proc = subprocess.Popen([sys.executable, "-c", terminal, "sweep", str(spec), "--grid",
                             "optimizer.lr=0.05,0.04,0.03", "--jobs", "2", "--executor", executor,
                             "--out", str(tmp_path / "sweeps")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_until("two runs of the sweep each 2 epochs in, none finished", lambda: _two_runs_training(tmp_path), proc)
    if executor == "dask":
        os.killpg(proc.pid, signal.SIGINT)  # the sweep's whole process group, as a terminal's Ctrl-C
    else:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    folder = next((tmp_path / "sweeps" / "grid").iterdir())
    assert proc.returncode == 130 and f"continue with: devgrad sweep --resume {folder}" in err, err
    stopped = _lines(folder)
    assert sorted(r["index"] for r in stopped) == [0, 1] and all(r["status"] == "stopped" for r in stopped)
    assert all(r["wall_seconds"] > 0 and 2 <= r["final"]["epoch"] < EPOCHS_PAST_THE_SIGNAL for r in stopped)
    assert sorted(p.name for p in (folder / "runs").iterdir()) == sorted(Path(r["run_dir"]).name for r in stopped), \
        "the queued runs never started"
    assert all((Path(r["run_dir"]) / "checkpoints" / "last.npz").exists() for r in stopped)
    if executor == "dask":  # the workers went with the sweep; resuming is the same on either executor
        _assert_gone({int(r["worker"].split(":")[1]) for r in stopped})
        return
    resumed = cli("sweep", "--resume", folder, "--jobs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "sweep --resume: 3 of 3 runs to run" in resumed.stdout
    newest = {r["index"]: r for r in _lines(folder)}
    assert sorted(newest) == [0, 1, 2] and all(r["status"] == "completed" for r in newest.values())
    for before in stopped:  # the time of both segments, not only the resumed one
        summary = json.loads((Path(before["run_dir"]) / "summary.json").read_text())
        assert summary["segments"] == 2 and newest[before["index"]]["wall_seconds"] == summary["wall_seconds"]
        assert summary["wall_seconds"] > before["wall_seconds"]


def _assert_gone(pids: set, patience: float = 30.0) -> None:
    deadline = time.monotonic() + patience  # an ended process may take a moment to be reaped
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
        time.sleep(0.1)
    assert not alive, f"worker processes {sorted(alive)} outlived the sweep"


def test_a_queued_run_does_not_start_once_the_sweep_is_stopping(tmp_path):
    from devgrad.experiment.sweep_point import NOT_STARTED, run_point

    (tmp_path / ".stop").touch()
    point = {"index": 3, "overrides": {}, "seed": 0, "spec": {}, "run_dir": str(tmp_path / "runs" / "003"),
             "stop_file": str(tmp_path / ".stop")}
    assert run_point(point)["status"] == NOT_STARTED
    assert not (tmp_path / "runs").exists()


def test_the_local_pool_spawns_its_workers_where_a_fork_is_unsafe(monkeypatch):
    """A forked worker keeps only the forking thread: a lock another thread holds stays held in it."""
    import threading

    from devgrad.experiment import figures
    from devgrad.experiment.local_pool import LocalPool

    monkeypatch.setattr(figures.threading, "active_count", lambda: 1)
    pool = LocalPool(2)
    pool.close()
    assert pool.description.endswith("(fork)") == sys.platform.startswith("linux")
    monkeypatch.undo()
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        pool = LocalPool(2)
        pool.close()
    finally:
        release.set()
        other.join()
    assert pool.description.endswith("(spawn)")


def _draws_in_process() -> bool:
    from devgrad.experiment import figures

    return figures._busy


def test_a_pool_with_a_worker_per_core_draws_each_runs_figures_in_its_worker():
    """As many workers as cores: each draws its runs' figures itself (no forked drawing process
    beside busy workers); fewer workers leave a core for one."""
    from devgrad.experiment import figures
    from devgrad.experiment.local_pool import LocalPool

    for jobs, busy in ((figures._cores(), True), (1, figures._cores() < 2)):
        pool = LocalPool(jobs)
        try:
            assert pool.pool.submit(_draws_in_process).result(timeout=60) is busy, jobs
        finally:
            pool.close()


def test_waiting_for_stopping_dask_runs_hides_only_a_timeout_or_a_cancelled_run():
    """A Ctrl-C'd sweep waits for its Dask runs' lines: a timeout (runs still stopping) or a
    cancelled run is expected; a scheduler gone is a clear RunError; anything else is not hidden."""
    import concurrent.futures
    from types import SimpleNamespace

    from devgrad.experiment.dask_pool import DaskPool

    finished = SimpleNamespace(status="finished", result=lambda: {"index": 0})
    stopping = SimpleNamespace(status="pending")
    pool = DaskPool.__new__(DaskPool)  # no cluster: only its wait is exercised

    def waiting_raises(exc):
        def wait(futures, timeout):
            raise exc
        return SimpleNamespace(wait=wait)

    for expected in (TimeoutError(), concurrent.futures.CancelledError()):
        pool.distributed = waiting_raises(expected)
        assert pool.collect([finished, stopping], 0.1) == [{"index": 0}]
    pool.distributed = waiting_raises(ConnectionResetError("the scheduler closed the connection"))
    with pytest.raises(RunError, match="the Dask scheduler stopped answering while the sweep was stopping"):
        pool.collect([finished, stopping], 0.1)
    pool.distributed = waiting_raises(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        pool.collect([finished, stopping], 0.1)


def _blas_threads(info: list) -> list:
    return sorted({lib["num_threads"] for lib in info if lib["user_api"] == "blas"})


def test_each_worker_has_the_blas_threads_it_was_asked_for():
    """A forked worker has its parent's BLAS, already started: OMP_NUM_THREADS set in it would
    change nothing, so the limit is set with threadpoolctl (the sweep's default: one thread)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from devgrad.experiment.local_pool import LocalPool

    for asked in (1, 2):
        pool = LocalPool(1, blas_threads=asked)
        try:
            got = _blas_threads(pool.pool.submit(threadpoolctl.threadpool_info).result(timeout=60))
        finally:
            pool.close()
        assert got == [min(asked, os.cpu_count() or 1)], (asked, got)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["[unclosed", "just text", ""])
def test_a_damaged_sweep_yaml_is_a_clear_error_never_resumed_as_another_kind_of_sweep(tmp_path, damage, capsys):
    from devgrad import cli as devgrad_cli
    from devgrad.experiment import search

    spec = {**SMALL, "train": {**SMALL["train"], "epochs": 1}, "plots": {"enabled": False}}
    result = sweep(spec, grid={"optimizer.lr": [0.05]}, jobs=1, out=tmp_path, quiet=True)
    (result.sweep_dir / "sweep.yaml").write_text(damage)
    before = sorted(p.name for p in result.sweep_dir.iterdir())
    with pytest.raises(RunError, match=r"sweep\.yaml (cannot be read|is damaged)"):
        search.is_search(result.sweep_dir)
    assert devgrad_cli.main(["sweep", "--resume", str(result.sweep_dir), "--quiet"]) == 2
    assert "sweep.yaml" in capsys.readouterr().err
    assert sorted(p.name for p in result.sweep_dir.iterdir()) == before


def test_a_device_this_machine_lacks_is_refused_before_any_sweep_folder(tmp_path, capsys):
    from devgrad import cli as devgrad_cli

    spec = write_spec(tmp_path, SMALL)
    out = tmp_path / "sweeps"
    for how in (["--grid", "optimizer.lr=0.1,0.01"], ["--search", "random", "--trials", "2",
                                                       "--space", "optimizer.lr=loguniform(0.001,0.1)"]):
        capsys.readouterr()
        assert devgrad_cli.main(["sweep", str(spec), *how, "--device", "cuda:99", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "device 'cuda:99'" in err and "Traceback" not in err
        assert not out.exists()


def test_resuming_a_sweep_on_a_machine_without_its_device_changes_nothing(tmp_path, monkeypatch, capsys):
    from devgrad import cli as devgrad_cli
    from devgrad.experiment import sweeps

    def made_only(sweep_dir, points, done, runner, *rest, **options):  # the folder, none of its runs
        runner.close()
        return sweep_dir

    with monkeypatch.context() as patched:
        patched.setattr(sweeps, "_execute", made_only)
        sweep_dir = sweep(SMALL, grid={"optimizer.lr": [0.05, 0.01]}, jobs=1, out=tmp_path, quiet=True)
    points = json.loads((sweep_dir / "points.json").read_text())
    for point in points:
        point["spec"]["device"] = "cuda:99"  # as if the sweep was made on a machine with that GPU
    (sweep_dir / "points.json").write_text(json.dumps(points))
    before = sorted(p.name for p in sweep_dir.rglob("*"))
    assert devgrad_cli.main(["sweep", "--resume", str(sweep_dir), "--quiet"]) == 2
    assert "device 'cuda:99'" in capsys.readouterr().err
    assert sorted(p.name for p in sweep_dir.rglob("*")) == before
