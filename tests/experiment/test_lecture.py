"""The lecture's claims, as executable tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

import devgrad as dg
from devgrad import nn
from devgrad.data.synthetic import triangle
from devgrad.experiment import run
from devgrad.experiment.errors import RunError
from devgrad.nn import functional as F
from tests.support.run_helpers import ROOT


def _train(model, X, y, steps=1500, lr=0.05):
    opt = dg.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(model(X).reshape(-1), y).backward()
        opt.step()
    return model


def _accuracy(model, X, y) -> float:
    with dg.no_grad():
        return float(((model(X).reshape(-1).numpy() > 0) == (y.numpy() > 0.5)).mean())


@pytest.fixture(scope="module")
def triangle_data():
    X, y = triangle(1500, seed=0)
    return dg.tensor(X, dtype="float32"), dg.tensor(y, dtype="float32")


@pytest.mark.slow
def test_triangle_needs_a_hidden_layer(triangle_data):
    """Inside vs outside a triangle is not linearly separable; 3 sigmoid units + 1 output solve it."""
    X, y = triangle_data
    logistic = _accuracy(_train(nn.MLP([2, 1], generator=0), X, y), X, y)
    three_lines = _accuracy(_train(nn.MLP([2, 3, 1], activation="sigmoid", generator=0), X, y), X, y)
    assert logistic < 0.85, f"a single logistic regression should stay clearly below 100%, got {logistic:.3f}"
    assert three_lines >= 0.97, f"the 3-unit MLP should reach >= 97%, got {three_lines:.3f}"


@pytest.mark.slow
def test_without_nonlinearity_an_mlp_collapses_to_one_linear_map(triangle_data):
    X, y = triangle_data
    deep_linear = _train(nn.MLP([2, 3, 3, 1], activation="identity", generator=1), X, y)
    lin = deep_linear.linears
    W = lin[0].weight.numpy().astype(np.float64)
    b = lin[0].bias.numpy().astype(np.float64)
    for layer in lin[1:]:
        W2, b2 = layer.weight.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64)
        W, b = W2 @ W, W2 @ b + b2
    composed = X.numpy().astype(np.float64) @ W.T + b
    np.testing.assert_allclose(deep_linear(X).numpy(), composed, rtol=1e-4, atol=1e-4)
    logistic = _accuracy(_train(nn.MLP([2, 1], generator=0), X, y), X, y)
    assert _accuracy(deep_linear, X, y) <= logistic + 0.01


@pytest.mark.parametrize("init,expect_identical", [("zeros", True), ("xavier_uniform", False)])
def test_symmetry_zero_init_keeps_hidden_units_identical(triangle_data, init, expect_identical):
    X, y = triangle_data
    model = _train(nn.MLP([2, 4, 1], activation="sigmoid", init=init, generator=0), X, y, steps=300)
    rows = model.linears[0].weight.numpy()
    out_weights = model.linears[1].weight.numpy()[0]
    spread = np.abs(rows - rows[0]).max() + np.abs(out_weights - out_weights[0]).max()
    if expect_identical:
        assert np.abs(rows).max() > 1e-3, "the weights did train"
        assert spread < 1e-6, "every hidden unit must stay a copy of the first"
    else:
        assert spread > 0.1, "random initialisation breaks the symmetry"


def test_single_neuron_chain_rule_by_hand():
    """z = σ(αx₁ + βx₂), L = (y − z)²: backprop gives ∂L/∂α = ∂L/∂z · σ'(s) · x₁."""
    x1, x2, y_true = 0.7, -1.3, 1.0
    alpha = dg.tensor(0.4, requires_grad=True, dtype="float64")
    beta = dg.tensor(-0.2, requires_grad=True, dtype="float64")
    s = alpha * x1 + beta * x2
    z = s.sigmoid()
    loss = (y_true - z) ** 2
    loss.backward()
    s_val = 0.4 * x1 - 0.2 * x2
    z_val = 1 / (1 + np.exp(-s_val))
    dL_dz = -2 * (y_true - z_val)
    dz_ds = z_val * (1 - z_val)
    assert alpha.grad.item() == pytest.approx(dL_dz * dz_ds * x1, rel=1e-12)
    assert beta.grad.item() == pytest.approx(dL_dz * dz_ds * x2, rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name,minimum,maximum", [
    ("triangle", 0.97, 1.0), ("triangle_linear_activation", 0.0, 0.85), ("zero_init_symmetry", 0.0, 0.85),
    ("xor", 0.9, 1.0), ("logistic_regression", 0.85, 1.0), ("linear_classifier", 0.95, 1.0),
])
def test_lecture_experiments_show_what_the_lecture_says(tmp_path, name, minimum, maximum):
    result = run(ROOT / "experiments" / f"{name}.yaml", overrides=["plots.enabled=false"], out=tmp_path, quiet=True,
                 device="cpu")  # the accuracy is checked, not the pictures (test_pages draws them)
    accuracy = result.summary["test"]["test_accuracy"]
    assert minimum <= accuracy <= maximum, (name, accuracy)


_RUNS_IN_THIS_PROCESS: list = []


def _record_run(path, **kwargs):
    _RUNS_IN_THIS_PROCESS.append(path.stem)
    return path.stem


def test_the_lecture_trains_its_runs_here_while_another_thread_runs(tmp_path, monkeypatch):
    """Forked workers would inherit a lock another thread holds; with a thread alive the runs go
    one after the other in this process."""
    import threading

    from devgrad import lecture

    monkeypatch.setattr(lecture.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        results = lecture._run_specs(_record_run, tmp_path, "cpu", quiet=True)
    finally:
        release.set()
        other.join()
    assert results == {name: name for name in lecture.SPECS}
    assert _RUNS_IN_THIS_PROCESS == list(lecture.SPECS)


@pytest.mark.parametrize("threads", [1, 2], ids=["forked-runs", "runs-here"])
def test_the_lecture_draws_its_own_pictures_while_the_runs_train(tmp_path, monkeypatch, threads):
    """The page's own work (the derivative graph, the path sums) runs once, in this process, beside
    the runs: while forked workers train them, or after them where they train here."""
    import threading

    from devgrad import lecture

    monkeypatch.setattr(lecture.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    calls = []
    release = threading.Event()
    other = threading.Thread(target=release.wait) if threads == 2 else None
    if other is not None:
        other.start()
    try:
        results = lecture._run_specs(_record_run, tmp_path, "cpu", quiet=True,
                                     meanwhile=lambda: calls.append(threading.current_thread().name))
    finally:
        release.set()
        if other is not None:
            other.join()
    assert results == {name: name for name in lecture.SPECS}
    assert calls == [threading.main_thread().name]


def _interrupted_run(path, out, **kwargs):
    """The first run started is Ctrl-C'd; any other takes a moment and leaves a mark that it ran."""
    if path.stem == "zero_init_symmetry":
        raise KeyboardInterrupt("continue with: devgrad resume ...")
    time.sleep(0.3)
    Path(out).mkdir(parents=True, exist_ok=True)  # as a run makes its folder (the first one, in one process)
    (Path(out) / f"{path.stem}.ran").touch()
    return path.stem


def _failed_run(path, out, **kwargs):
    if path.stem == "zero_init_symmetry":
        raise RunError("cannot write metrics.csv: No space left on device")
    return _interrupted_run(path, out)


def _dead_worker(path, out, **kwargs):
    if path.stem == "zero_init_symmetry":
        os._exit(1)  # as if killed from outside
    return _interrupted_run(path, out)


def _again_in_a_fresh_process(request) -> None:
    """This test, run by a pytest of its own: an earlier test's thread lives on in this process,
    where the lecture would not fork. The test must pass there, not skip."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                           request.node.nodeid], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("run_fn,raised,message", [
    (_interrupted_run, KeyboardInterrupt, "devgrad resume"),
    (_failed_run, RunError, "No space left on device"),
    (_dead_worker, RunError, "a worker process of devgrad lecture died before its runs were done"),
], ids=["ctrl-c", "failed-run", "dead-worker"])
def test_a_stopped_or_failed_run_ends_the_lecture_before_any_queued_run_starts(tmp_path, monkeypatch, request, run_fn,
                                                                                raised, message):
    """Forked workers: at most the run that was already training beside it finishes; the error says
    what happened (the worker pool hands out runs ahead of time: each checks the stop flag first)."""
    from devgrad import lecture

    monkeypatch.setattr(lecture.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    if not lecture.fork_is_safe():
        return _again_in_a_fresh_process(request)
    with pytest.raises(raised, match=message):
        lecture._run_specs(run_fn, tmp_path, "cpu", quiet=True)
    assert len(list(tmp_path.glob("*.ran"))) <= 1


def test_a_ctrl_c_lost_in_a_weakref_callback_is_raised_again_in_the_run(monkeypatch):
    """matplotlib's drawing runs weakref callbacks all the time; a Ctrl-C landing in one would be
    printed ("Exception ignored in ...") and lost, and the run would draw on to its end."""
    from devgrad import lecture_pool

    class Figure:
        pass

    def callback(ref):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys, "unraisablehook", lecture_pool._raise_interrupt_again)
    drawn = Figure()
    watched = weakref.ref(drawn, callback)
    try:
        with pytest.raises(KeyboardInterrupt):
            del drawn
            time.sleep(1.0)  # the run going on: the interrupt comes a millisecond later
    finally:
        lecture_pool._no_interrupt_pending()
    assert watched() is None


@pytest.mark.slow
@pytest.mark.parametrize("forked", [True, False], ids=["forked-workers", "one-process"])
def test_an_interrupted_lecture_says_so_and_writes_no_page(tmp_path, monkeypatch, request, forked):
    from devgrad import lecture

    monkeypatch.setattr(lecture.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    if not forked:
        monkeypatch.setattr(lecture, "fork_is_safe", lambda: False)
    elif not lecture.fork_is_safe():
        return _again_in_a_fresh_process(request)
    monkeypatch.setattr(lecture, "run", _interrupted_run)
    monkeypatch.setattr(lecture, "_neuron_and_paths", lambda out: {})
    with pytest.raises(KeyboardInterrupt, match="the lecture stopped before writing its page .*run devgrad lecture "
                                                "again"):
        lecture.build(tmp_path / "lec", quiet=True)
    assert not (tmp_path / "lec" / "index.html").exists()


@pytest.mark.parametrize("device", ["cuda:99", "tpu"])
def test_a_device_this_machine_lacks_makes_no_folder_and_no_line(tmp_path, capsys, device):
    from devgrad import cli as devgrad_cli

    assert devgrad_cli.main(["lecture", "--out", str(tmp_path / "lec"), "--device", device]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and "Traceback" not in printed.err and device in printed.err
    assert not (tmp_path / "lec").exists()
