"""devgrad.experiment.plot_worker: the process that imports matplotlib while a run trains and
draws its figures at the end; and the picklable jobs it is sent."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import pickle
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from devgrad.experiment import figures, plot_worker, run
from devgrad.io import atomic_write
from tests.support.run_helpers import SMALL, SMALL_NO_PLOTS, cli, needs_matplotlib, write_spec

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker is forked (Linux only)")


def test_precomputed_values_travel_without_the_model():
    points = np.arange(6.0).reshape(3, 2)
    calls = []

    def model(query):
        calls.append(len(query))
        return query.sum(axis=1, keepdims=True)

    lookup = figures.precomputed(model, points)
    sent = pickle.loads(pickle.dumps(lookup))
    assert np.array_equal(sent(points.copy()), [[1.0], [5.0], [9.0]]) and calls == [3]
    assert np.array_equal(lookup(points[:1]), [[1.0]]) and calls == [3, 1]  # here: other points ask the model
    with pytest.raises(ValueError, match="other points"):
        sent(points[:1])


def test_a_worker_is_wanted_only_where_it_can_help(monkeypatch):
    monkeypatch.setattr(figures, "fork_is_safe", lambda: True)
    monkeypatch.setattr(figures, "_cores", lambda: 2)
    monkeypatch.setattr(plot_worker, "idle_core", lambda: False)
    assert not plot_worker.wanted()  # every core busy: the worker would only take turns with the training
    monkeypatch.setattr(plot_worker, "idle_core", lambda: True)
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot", raising=False)
    assert plot_worker.wanted()
    monkeypatch.setattr(figures, "_cores", lambda: 1)
    assert not plot_worker.wanted()  # no core to import matplotlib on beside the training
    monkeypatch.setattr(figures, "_cores", lambda: 2)
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    assert not plot_worker.wanted()  # a pool's worker: the other runs keep the cores busy
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: None)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "matplotlib" else real_find_spec(name))
    assert not plot_worker.wanted()  # no matplotlib: nothing to import, no process forked for it
    monkeypatch.undo()
    monkeypatch.setattr(figures, "fork_is_safe", lambda: False)
    assert plot_worker.wanted() is False and plot_worker.PlotWorker.start() is None


def test_a_core_is_idle_when_fewer_tasks_than_cores_can_run(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "_cores", lambda: 2)
    loadavg = tmp_path / "loadavg"
    alone = _threads(tmp_path / "threads", "RS")  # this process: one thread running, one asleep
    loadavg.write_text("1.52 1.10 0.90 1/412 9876\n")  # runnable now: this process alone
    assert plot_worker.idle_core(loadavg, alone)
    loadavg.write_text("1.52 1.10 0.90 2/412 9876\n")  # this process and another: both cores taken
    assert not plot_worker.idle_core(loadavg, alone)
    assert plot_worker.idle_core(tmp_path / "missing")  # cannot tell (not Linux): as if idle


def _threads(folder: Path, states: str) -> Path:
    """A /proc/self/task of threads in ``states`` (R: running or runnable, S: sleeping)."""
    for tid, state in enumerate(states, start=100):
        (folder / str(tid)).mkdir(parents=True)
        (folder / str(tid) / "stat").write_text(f"{tid} (python (run)) {state} 1 2 3 4\n")
    return folder


def test_a_core_is_idle_when_only_this_processs_threads_run_beside_it(tmp_path, monkeypatch):
    """NumPy's BLAS threads, just started where devgrad run forks its worker, count in the
    runnable tasks: this process is one task however many of its threads run."""
    monkeypatch.setattr(figures, "_cores", lambda: 2)
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("1.52 1.10 0.90 2/412 9876\n")  # this process's two threads, nothing else
    assert plot_worker.idle_core(loadavg, _threads(tmp_path / "a", "RR"))
    assert not plot_worker.idle_core(loadavg, _threads(tmp_path / "b", "RS"))  # another process runs
    loadavg.write_text("1.52 1.10 0.90 3/412 9876\n")  # and one more task
    assert not plot_worker.idle_core(loadavg, _threads(tmp_path / "c", "RR"))
    assert not plot_worker.idle_core(loadavg, tmp_path / "unreadable")  # this process counted once


def _write_pid(plt, path: Path, trouble: str = "") -> Path:
    """A figure that writes the drawing process's id (a module-level function: it can be sent)."""
    if trouble == "fails" and os.getpid() != int(os.environ["TEST_PARENT_PID"]):
        raise RuntimeError("a figure failed in the worker")
    if trouble == "hangs":
        atomic_write(path.with_suffix(".pid"), str(os.getpid()).encode())
        (path.parent / f".{path.name}.x1y2.tmp").write_text("half")  # killed while atomic_write writes
        time.sleep(60)
    atomic_write(path, str(os.getpid()).encode())
    return path


@pytest.fixture
def worker(monkeypatch):
    figures.pyplot()  # imported once here, not by every worker forked in these tests
    monkeypatch.setattr(plot_worker, "wanted", lambda: True)
    monkeypatch.setattr(figures, "_cores", lambda: 2)
    monkeypatch.setenv("TEST_PARENT_PID", str(os.getpid()))
    started = plot_worker.PlotWorker.start()
    yield started
    started.close()


def _state(pid: int) -> str:
    """A process's state letter ("Z": dead, not yet reaped), "gone" when there is none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


@linux_only
@needs_matplotlib
def test_the_worker_draws_the_figures_it_is_sent_then_a_failure_is_left_to_the_run(tmp_path, worker):
    jobs = [(1.0, tmp_path / "a.png", figures.Drawing(_write_pid, tmp_path / "a.png"))]
    assert worker.render(jobs) == [tmp_path / "a.png"]
    assert int((tmp_path / "a.png").read_text()) == worker.process.pid
    worker.close()
    assert worker.process.exitcode is not None
    failing = [(1.0, tmp_path / "b.png", figures.Drawing(_write_pid, tmp_path / "b.png", trouble="fails"))]
    unsendable = [(1.0, tmp_path / "c.png", lambda: None)]
    for jobs in (failing, unsendable):  # the run draws them again itself, and raises their errors there
        again = plot_worker.PlotWorker.start()
        try:
            assert again.render(jobs) is None
        finally:
            again.close()
        assert again.process.exitcode is not None


@linux_only
@needs_matplotlib
def test_figures_begun_before_the_others_are_drawn_by_the_worker_meanwhile(tmp_path, worker, monkeypatch):
    begun = [(1.0, tmp_path / "a.png", figures.Drawing(_write_pid, tmp_path / "a.png"))]
    rest = [(1.0, tmp_path / f"{name}.png", figures.Drawing(_write_pid, tmp_path / f"{name}.png")) for name in "bc"]
    worker.begin(begun)
    deadline = time.monotonic() + 60
    while not (tmp_path / "a.png").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.render(begun + rest) == [tmp_path / f"{name}.png" for name in "abc"]
    drew = int((tmp_path / "a.png").read_text())  # at once, by the worker or a process it forked
    assert drew == worker.process.pid or _parent(drew) in (worker.process.pid, "gone")
    worker.close()
    hangs = [(1.0, tmp_path / "d.png", figures.Drawing(_write_pid, tmp_path / "d.png", trouble="hangs"))]
    fails = [(1.0, tmp_path / "e.png", figures.Drawing(_write_pid, tmp_path / "e.png", trouble="fails"))]
    for jobs in (hangs, fails):
        again = plot_worker.PlotWorker.start()
        again.begin(jobs)
        if jobs is hangs:  # the run ends (Ctrl-C, an error) while the worker draws what it began
            deadline = time.monotonic() + 60
            while not (tmp_path / "d.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            again.close()
            assert again.process.exitcode is not None and not list(tmp_path.glob(".*.tmp"))
        else:  # a begun figure failed: the run draws them all itself, and raises the error there
            assert again.render(jobs + rest) is None
            again.close()


def _parent(pid: int):
    """A process's parent's id, "gone" when the process has ended."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


def _write_when(plt, path: Path, other: Path) -> Path:
    """A figure that is done only once ``other`` is written (or 30 s have passed): its file says which."""
    deadline = time.monotonic() + 30
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    atomic_write(path, b"after" if other.exists() else b"alone")
    return path


@linux_only
@needs_matplotlib
def test_the_others_are_drawn_while_the_begun_figures_are_still_being_drawn(tmp_path, worker):
    """The learning curves go first (``begin``); the others' data, sent while they are still
    being drawn, is drawn at once beside them, not after them."""
    begun = [(1.0, tmp_path / "a.png", figures.Drawing(_write_when, tmp_path / "a.png", tmp_path / "b.png"))]
    rest = [(1.0, tmp_path / "b.png", figures.Drawing(_write_pid, tmp_path / "b.png"))]
    worker.begin(begun)
    time.sleep(0.2)  # the worker has begun the learning curves
    assert worker.render(begun + rest) == [tmp_path / "a.png", tmp_path / "b.png"]
    assert (tmp_path / "a.png").read_text() == "after"
    assert not list(tmp_path.glob(".*.tmp"))


@linux_only
@needs_matplotlib
def test_ctrl_c_while_the_worker_draws_ends_it_and_its_drawing_processes(tmp_path, worker, monkeypatch):
    jobs = [(1.0, tmp_path / f"{name}.png", figures.Drawing(_write_pid, tmp_path / f"{name}.png", trouble="hangs"))
            for name in "ab"]  # two figures: the worker forks a second process for one of them

    def interrupt(signum, frame):
        if all((tmp_path / f"{name}.pid").exists() for name in "ab"):
            raise KeyboardInterrupt
        signal.setitimer(signal.ITIMER_REAL, 0.05)

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        with pytest.raises(KeyboardInterrupt):
            worker.render(jobs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    pids = {int((tmp_path / f"{name}.pid").read_text()) for name in "ab"}
    assert len(pids) == 2 and worker.process.exitcode is not None
    deadline = time.monotonic() + 5
    while any(_state(pid) not in ("Z", "gone") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(_state(pid) in ("Z", "gone") for pid in pids), "a drawing process outlived the run's Ctrl-C"
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("*.png"))


@linux_only
def test_a_run_stopped_by_ctrl_c_leaves_no_worker(tmp_path, monkeypatch):
    monkeypatch.setattr(plot_worker, "wanted", lambda: True)
    started = []
    real_start = plot_worker.PlotWorker.start.__func__

    def start(cls):
        started.append(real_start(cls))
        return started[-1]

    monkeypatch.setattr(plot_worker.PlotWorker, "start", classmethod(start))

    def ctrl_c(trainer, epoch, row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run({**SMALL, "train": {"epochs": 3}}, out=tmp_path, quiet=True, callbacks=[ctrl_c])
    assert len(started) == 1 and started[0].process.exitcode is not None


@linux_only
def test_a_worker_forked_where_devgrad_run_starts_is_the_runs_or_ended_without_plots(tmp_path, monkeypatch):
    monkeypatch.setattr(plot_worker, "wanted", lambda: True)
    monkeypatch.setattr(plot_worker, "_early", None)
    plot_worker.start_early(["train.epochs=3", "plots.enabled = False"])
    assert plot_worker._early is None  # the command line turns the plots off: nothing forked
    plot_worker.start_early([])
    early = plot_worker._early
    try:
        assert early is not None and plot_worker.PlotWorker.start() is early and plot_worker._early is None
    finally:
        early.close()
    plot_worker.start_early([])
    early = plot_worker._early
    run({**SMALL, "train": {"epochs": 1}, "plots": {"enabled": False}}, out=tmp_path, quiet=True)
    assert plot_worker._early is None and early.process.exitcode is not None  # the spec's own "no plots"
    plot_worker.start_early([])
    dead = plot_worker._early
    dead.close()
    monkeypatch.setattr(plot_worker, "wanted", lambda: False)
    assert plot_worker.PlotWorker.start() is None  # one that died is not taken; none wanted now


def test_devgrad_run_forks_its_worker_before_it_imports_the_run(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(plot_worker, "start_early", lambda overrides: called.append(list(overrides)))
    spec = write_spec(tmp_path, {**SMALL_NO_PLOTS, "train": {"epochs": 1}})
    assert cli("run", spec, "--print-config").returncode == 0 and called == []  # no run: no worker
    assert cli("run", spec, "--set", "train.epochs=1", "--out", tmp_path / "runs", "--quiet").returncode == 0
    assert called == [["train.epochs=1"]]


@pytest.mark.slow
@linux_only
@needs_matplotlib
def test_a_worker_that_finds_every_job_waiting_draws_them_side_by_side(tmp_path, monkeypatch):
    """The learning curves are sent first (``begin``) so that a ready worker draws them while the
    run computes the others' data; a worker still importing matplotlib when the others come draws
    them all at once, side by side, instead of the first one alone first."""
    real_pyplot = figures.pyplot()

    def slow_pyplot():
        time.sleep(0.3)  # the worker's import: both messages are sent meanwhile
        return real_pyplot

    monkeypatch.setattr(figures, "pyplot", slow_pyplot)
    monkeypatch.setattr(plot_worker, "wanted", lambda: True)
    monkeypatch.setattr(figures, "_cores", lambda: 2)
    jobs = [(1.0, tmp_path / f"{name}.png", figures.Drawing(_write_pid, tmp_path / f"{name}.png")) for name in "ab"]
    worker = plot_worker.PlotWorker.start()
    try:
        worker.begin(jobs[:1])
        assert worker.render(jobs) == [path for _, path, _ in jobs]
    finally:
        worker.close()
    pids = {int((tmp_path / f"{name}.png").read_text()) for name in "ab"}
    assert worker.process.pid in pids and len(pids) == 2  # the worker and a process it forked
