"""CapturedStep: a training step replayed as a CUDA graph does exactly what the eager step does.

On the CPU there are no graphs: the step runs eagerly and these tests check that the same
code path gives the same results there. With DEVGRAD_TEST_DEVICES=cuda the graph tests run
for real (capture, replays, a second graph for the short last batch, schedules).
"""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad import nn, optim
from devgrad.backend import capturing
from devgrad.capture import CapturedStep
from devgrad.experiment import commands
from devgrad.nn import functional as F
from devgrad.core import Tensor

rng = np.random.default_rng(3)
X = rng.standard_normal((70, 5)).astype(np.float32)
Y = rng.integers(0, 3, 70)


def _train(device, graphed: bool, optimizer: str, steps_per_epoch_shapes=(32, 32, 6), epochs: int = 3,
           clip: float | None = 1.0):
    """Train a small MLP for a few epochs of batches 32, 32, 6; returns the weights, the losses
    as seen by the caller, and the CapturedStep."""
    model = nn.MLP([5, 16, 16, 3], activation="tanh", device=device, generator=np.random.default_rng(0))
    cls = {"sgd": lambda p, **k: optim.SGD(p, lr=0.1, momentum=0.9, **k), "adam": lambda p, **k: optim.Adam(
        p, lr=0.01, weight_decay=0.01, **k)}[optimizer]
    opt = cls(model.parameters(), capturable=graphed)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    total = dg.zeros((), device=device, dtype="float64")

    def step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        if clip:
            optim.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        total.data += loss.data  # accumulate on the device, as the runner does
        return loss

    captured = CapturedStep(step, device, enabled=graphed, optimizer=opt if graphed else None)
    losses = []
    for _ in range(epochs):
        start = 0
        for size in steps_per_epoch_shapes:
            xb = dg.tensor(X[start:start + size], device=device)
            yb = dg.tensor(Y[start:start + size], device=device)
            start += size
            losses.append(captured(xb, yb).item())
        sched.step()
    weights = [p.numpy() for p in model.parameters()]
    return weights, losses, total.item(), captured


def test_capture_is_unavailable_on_the_cpu():
    cpu = dg.device("cpu")
    assert not cpu.supports_graphs
    with pytest.raises(dg.DeviceError, match="CUDA graphs need a GPU"):
        cpu.capture(lambda: None)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_captured_training_equals_eager_training(device, optimizer):
    """Same weights, same per-step losses and the same device-side sum, with lr halved every
    epoch (refreshed before replays) and a short last batch (its own graph)."""
    w_eager, loss_eager, total_eager, _ = _train(device, False, optimizer)
    w_graph, loss_graph, total_graph, captured = _train(device, True, optimizer)
    assert captured.graphs == 2  # batches of 32 and of 6
    if device.supports_graphs:
        assert captured.replays == 9 - 2  # every step but the first of each shape
    else:  # the CPU: the first step of each shape eager, the second recorded as it runs
        assert captured.replays == 9 - 2 * 2
        assert loss_graph == loss_eager and total_graph == total_eager  # bit for bit
        for a, b in zip(w_graph, w_eager):
            assert a.tobytes() == b.tobytes()
    np.testing.assert_allclose(loss_graph, loss_eager, rtol=1e-5)
    assert total_graph == pytest.approx(total_eager, rel=1e-6)
    for a, b in zip(w_graph, w_eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(w_eager[0], _train(device, False, optimizer, epochs=1)[0][0]), "training must move"


def test_captured_step_refuses_an_optimizer_that_is_not_capturable(device):
    w = dg.zeros(3, requires_grad=True, device=device)
    with pytest.raises(ValueError, match=r"capturable=True \(e\.g\. Adam\(params, \.\.\., capturable=True\)\)"):
        CapturedStep(lambda x: x, device, optimizer=optim.Adam([w]))
    assert CapturedStep(lambda x: x, device, optimizer=optim.Adam([w], capturable=True)).replays == 0


def test_captured_step_checks_its_inputs(device):
    captured = CapturedStep(lambda x: x * 2, device)
    if not device.supports_graphs:
        assert captured(dg.tensor([1.0], device=device)).item() == 2.0  # runs eagerly
        return
    with pytest.raises(TypeError, match="inputs must be Tensors"):
        captured(np.ones(2))
    with pytest.raises(ValueError, match="an input is on cpu, the step on cuda:0"):
        captured(dg.tensor([1.0], device="cpu"))


def test_runner_capture_gives_the_eager_results(device, tmp_path, capsys):
    """train.capture (train.cuda_graph, its older name, still works): the captured run gives the
    eager run's results — bit for bit on the CPU, whose replays repeat the very NumPy calls."""
    spec = {"name": "g", "device": device.name, "seed": 1, "data": {"source": "xor", "n_samples": 300},
            "model": {"hidden": [8], "activation": "tanh"}, "optimizer": {"name": "adam", "lr": 0.05},
            "schedule": {"name": "step", "step_size": 1, "gamma": 0.7},
            "train": {"epochs": 3, "batch_size": 64, "clip_grad_norm": 5.0}, "plots": {"enabled": False}}
    eager = commands.run(spec, overrides=["train.capture=false"], out=tmp_path / "eager", quiet=True)
    graphed = commands.run(spec, overrides=["train.cuda_graph=true"], out=tmp_path / "graph", quiet=True)
    default = commands.run(spec, out=tmp_path / "default", quiet=True)
    assert "capture" not in capsys.readouterr().err
    report = graphed.summary["capture"]
    assert report["setting"] is True and report["active"] and report["recorded"] == 2  # batches of 64 and 44
    assert report["replays"] > 0 and report["why_not"] is None and report["eager_fallbacks"] == 0
    assert eager.summary["capture"]["active"] is False and eager.summary["capture"]["why_not"] == (
        "train.capture is false")
    assert default.summary["capture"]["setting"] == "auto" and default.summary["capture"]["active"]
    assert graphed.summary["cuda_graph"]["active"] == device.supports_graphs
    log = (graphed.run_dir / "train.log").read_text()
    assert "train.capture True: the training step is captured and replayed as " in log
    if device.supports_graphs:
        for a, b in zip(eager.history, graphed.history):
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
            assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
            assert b["lr"] == a["lr"]
        return
    assert report["as"] == "plans of NumPy calls"
    assert graphed.history == eager.history == default.history  # every metric of every epoch, exactly
    weights = [np.load(r.run_dir / "checkpoints" / "last.npz") for r in (eager, graphed)]
    for key in weights[0].files:
        assert weights[0][key].tobytes() == weights[1][key].tobytes(), key


def test_a_step_that_reads_the_host_runs_eagerly_with_a_warning(device):
    """Capture executes nothing, so when it fails (here: a host read inside the step) the steps
    go on eagerly with no update lost or applied twice."""
    if not device.supports_graphs:
        pytest.skip("needs a GPU: the CPU never captures")
    total = dg.zeros((), device=device)

    def fn(x):
        total.data += x.data.sum()
        return float(total.data)  # a host read: not capturable

    step = CapturedStep(fn, device)
    with pytest.warns(RuntimeWarning, match="could not capture the step"):
        assert step(dg.ones(3, device=device)) == 3.0
    assert step(dg.ones(3, device=device)) == 6.0
    assert step.failure is not None and step.replays == 0 and step.graphs == 0


class _CapturingModule:
    """The CPU's device module with a ``capture`` that runs ``fn`` once (recording nothing): enough to
    see what ``Device.capture`` refuses while a step is being recorded."""

    def __getattr__(self, name):
        return getattr(dg.device("cpu").module, name)

    @staticmethod
    def capture(fn):
        class Graph:
            result = fn()

            @staticmethod
            def replay():
                fn()

        return Graph


def _graph_device(device):
    """``device`` itself on a GPU; on the CPU a CPU device that captures through ``_CapturingModule``."""
    if device.supports_graphs:
        return device
    dev = dg.Device("cpu")
    dev.module = _CapturingModule()
    dev.supports_graphs = True
    return dev


def test_a_dropout_mask_drawn_while_capturing_is_refused(device):
    """A replayed step would reuse the one dropout mask drawn during capture, silently: drawing it
    raises CaptureError instead, CapturedStep warns and runs the step eagerly (a fresh mask each
    call), and random draws work again once the capture is over."""
    dev = _graph_device(device)
    x = dg.ones((64, 32), device=dev)
    with pytest.raises(dg.CaptureError, match="dropout mask.*every replay would reuse"):
        dev.capture(lambda: F.dropout(x, 0.5))
    assert F.dropout(x, 0.5).shape == (64, 32)  # eager draws are fine after the failed capture

    drop = nn.Dropout(0.5, seed=1)
    step = CapturedStep(lambda xb: drop(xb) * 1.0, dev)
    with pytest.warns(RuntimeWarning, match="could not capture the step.*CaptureError"):
        first = step(x).numpy()
    second, third = step(x).numpy(), step(x).numpy()
    assert step.replays == 0 and step.graphs == 0 and "dropout" in step.failure
    assert not np.array_equal(first, second) and not np.array_equal(second, third)  # a new mask per call
    assert set(np.unique(third)) <= {0.0, 2.0}


def test_a_sum_first_met_during_capture_leaves_eager_sums_right(device):
    """A sum whose ones vector is first needed while a graph is recorded (a length no eager step
    summed): the graph's replays give the sum, and an eager sum of that length, before and after
    a replay and once the graph is gone, gives it too (it must not read the graph's unfilled or
    freed vector)."""
    if not device.supports_graphs:
        pytest.skip("needs a GPU: the CPU never captures")
    n = 4099  # a length nothing else in this process sums
    host = np.arange(n * 2, dtype=np.float32).reshape(n, 2) / n
    a = dg.tensor(host, device=device)
    want = host.sum(axis=0)
    device.kernels.sum_axes(a.data[:3], (0,))  # an eager sum of another length: its kernels are loaded
    graph = device.capture(lambda: device.kernels.sum_axes(a.data, (0,)))
    np.testing.assert_allclose(device.to_host(device.kernels.sum_axes(a.data, (0,))), want, rtol=1e-5)
    graph.replay()
    np.testing.assert_allclose(device.to_host(graph.result), want, rtol=1e-5)
    del graph
    np.testing.assert_allclose(device.to_host(device.kernels.sum_axes(a.data * 2, (0,))), 2 * want, rtol=1e-5)


class _RecordingDevice(dg.Device):
    """The CPU, pretending to support graphs: ``capture`` records ``fn`` without running its
    effect (the test's state is restored afterwards, as a real capture executes nothing), and
    ``replay`` runs it again on whatever the static input buffers then hold."""

    def __init__(self, state: np.ndarray):
        super().__init__("cpu")
        self.supports_graphs = True
        self.state = state
        self.captures = 0

    def capture(self, fn):
        self.captures += 1
        saved = self.state.copy()

        class Graph:
            result = fn()

            @staticmethod
            def replay():
                fn()

        np.copyto(self.state, saved)  # capture executes nothing
        return Graph


def test_captured_step_feeds_each_call_through_its_graphs_static_inputs():
    """The mechanics of CapturedStep without a GPU: the first call of each input shape runs
    eagerly and captures; later calls copy their inputs into that graph's static buffers,
    call before_replay, and replay — so every call's data is used exactly once."""
    total = np.zeros(1)
    dev = _RecordingDevice(total)
    refreshed = []

    def fn(x):
        total[...] += x.data.sum()
        return Tensor._make(total.copy(), dev)

    step = CapturedStep(fn, dev, before_replay=lambda: refreshed.append(True))
    seen = 0.0
    for values in ([1.0, 2.0], [3.0, 4.0], [5.0], [6.0, 7.0], [8.0]):
        x = Tensor._make(np.array(values), dev)
        step(x)
        seen += sum(values)
        assert total[0] == seen  # no call lost, none applied twice
    assert dev.captures == 2 and step.graphs == 2 and step.replays == 3
    assert len(refreshed) == step.replays + step.graphs  # before each replay, and before each capture


class _NoHostReadsDevice(dg.Device):
    """The CPU playing a GPU for the capture audit: a step captured on it may not read anything
    back to the host (on a GPU that is a sync, which breaks capture). ``capture`` runs ``fn``
    once with host reads forbidden, then puts back every array ``state()`` lists (a real
    capture executes nothing); ``replay`` runs ``fn`` again."""

    def __init__(self, state):
        super().__init__("cpu")
        self.supports_graphs = True
        self.host_reads_are_free = False  # as on a GPU: code that would sync must skip it
        self.capturing = False
        self.state = state

    def to_host(self, array):
        if self.capturing:
            raise AssertionError("a value was read back to the host during capture")
        return super().to_host(array)

    def capture(self, fn):
        saved = [(a, a.copy()) for a in self.state()]
        self.capturing = True
        capturing.state.device = self  # what Device.capture marks: devgrad's own refusals apply too
        try:
            result = fn()
        finally:
            self.capturing = False
            capturing.state.device = None
            for array, copy in saved:
                np.copyto(array, copy)

        class Graph:
            @staticmethod
            def replay():
                fn()

        Graph.result = result
        return Graph


_CLASSES: dict = {}  # device -> dg.arange(3) there, made by the first (eager) step: not while capturing


def _one_hot(y):
    classes = _CLASSES.get(y.device)
    if classes is None:  # a host array copied to the device: refused while a step is recorded
        classes = _CLASSES[y.device] = dg.arange(3, device=y.device)
    return (y.reshape(-1, 1) == classes).astype("float32")


_LOSSES = {
    "bce": lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], (y == 1).astype("float32")),
    "logistic": lambda out, y: F.logistic_loss(out[:, 0], (y == 1).astype("float32") * 2 - 1),
    "hinge": lambda out, y: F.hinge_loss(out[:, 0], (y == 1).astype("float32") * 2 - 1),
    "cross_entropy": lambda out, y: F.cross_entropy(out, y, label_smoothing=0.1),
    "nll": lambda out, y: F.nll_loss(out.log_softmax(axis=-1), y),
    "mse": lambda out, y: F.mse_loss(out.softmax(axis=-1), _one_hot(y)),
}
_OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, capturable=True),
    "adam": lambda p: optim.Adam(p, lr=0.01, amsgrad=True, capturable=True),
    "adamw": lambda p: optim.AdamW(p, lr=0.01, capturable=True),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True, capturable=True),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.05, capturable=True),
}
_ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "softplus", "identity"]


@pytest.mark.parametrize(("activation", "loss", "optimizer"), [
    (act, loss, opt) for i, (act, loss, opt) in enumerate(
        (a, loss_name, o) for a in _ACTIVATIONS for loss_name in _LOSSES for o in _OPTIMIZERS) if i % 7 == 0])
def test_every_part_of_a_training_step_can_be_captured(activation, loss, optimizer):
    """The capture audit: every activation, loss and optimizer, with gradient clipping and metric
    sums on the device, runs through CapturedStep without reading anything back to the host
    while it is captured — and replays give the eager results."""
    results = []
    for graphed in (False, True):
        holder: dict = {}

        def every_array(holder=holder):
            """What the step changes: parameters, the metric sum, the optimizer's state."""
            model, opt, total = holder["model"], holder["opt"], holder["total"]
            state = [v for entry in opt.state.values() for v in entry.values() if isinstance(v, np.ndarray)]
            return [p.data for p in model.parameters()] + [total.data] + state

        dev = _NoHostReadsDevice(every_array) if graphed else dg.device("cpu")
        model = nn.MLP([5, 8, 3], activation=activation, device=dev, generator=np.random.default_rng(0))
        opt = _OPTIMIZERS[optimizer](model.parameters())
        total = Tensor._make(np.zeros((), dtype=np.float64), dev)
        holder.update(model=model, opt=opt, total=total)

        def step(xb, yb, model=model, opt=opt, total=total):
            value = _LOSSES[loss](model(xb), yb)
            opt.zero_grad()
            value.backward()
            optim.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            total.data += value.data

        captured = CapturedStep(step, dev, optimizer=opt)
        for start in (0, 16, 32):
            captured(Tensor._make(X[start:start + 16], dev), Tensor._make(Y[start:start + 16], dev))
        assert captured.failure is None
        results.append(([p.data.copy() for p in model.parameters()], float(total.data), captured))
    (eager_w, eager_total, _), (graph_w, graph_total, captured) = results
    assert captured.graphs == 1 and captured.replays == 2
    assert graph_total == pytest.approx(eager_total, rel=1e-6)
    for a, b in zip(eager_w, graph_w):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("frozen", ["adam", "sgd", "schedule", "host data"])
def test_what_a_replay_would_freeze_is_refused_while_capturing(device, frozen):
    """A non-capturable optimizer's rate and step count, a schedule stepped inside the step, or
    host data copied to the device would be recorded once and replayed unchanged (the copy from
    a staging buffer since reused): each raises CaptureError while capturing, so CapturedStep
    warns and runs the step eagerly (where they are right)."""
    dev = _graph_device(device)
    model = nn.MLP([5, 8, 3], device=dev, generator=np.random.default_rng(0))
    opt = (optim.Adam(model.parameters(), lr=0.01) if frozen == "adam" else
           optim.SGD(model.parameters(), lr=0.1, capturable=frozen in ("schedule", "host data")))
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)

    def step(xb, yb):
        opt.zero_grad()
        out = model(xb)
        if frozen == "host data":  # copied from host memory: a replay would not copy it again
            out = out * dg.tensor([1.0, 2.0, 3.0], device=dev, dtype=out.dtype)
        F.cross_entropy(out, yb).backward()
        opt.step()
        if frozen == "schedule":
            sched.step()

    captured = CapturedStep(step, dev, optimizer=opt if opt.capturable else None)
    batch = (Tensor._make(dev.put(X[:16]), dev), Tensor._make(dev.put(Y[:16]), dev))
    with pytest.warns(RuntimeWarning, match="could not capture the step.*CaptureError"):
        captured(*batch)
    assert {"schedule": "StepLR", "host data": "host data was copied"}.get(frozen, "not capturable") in captured.failure
    captured(*batch)
    assert captured.replays == 0 and captured.graphs == 0
    opt.step()  # eager steps are fine once the capture is over
    sched.step()


def _replace_parameter_arrays(model):
    """What ``model.to(...)`` or ``p.data = ...`` does: each parameter gets a new array, same values."""
    for p in model.parameters():
        p.data = p.data.copy()


def test_a_replaced_parameter_array_or_setting_makes_the_step_record_afresh():
    """A graph updates the arrays it was recorded on; once a parameter has a new array, a replay
    would train arrays nobody uses. With optimizer=, the next call runs eagerly and records again;
    so it does when a setting other than the learning rate changed."""
    holder: dict = {}

    def every_array():
        return [p.data for p in holder["model"].parameters()] + [
            v for entry in holder["opt"].state.values() for v in entry.values() if isinstance(v, np.ndarray)]

    dev = _NoHostReadsDevice(every_array)
    model = nn.MLP([5, 8, 3], device=dev, generator=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, capturable=True)
    holder.update(model=model, opt=opt)

    def step(xb, yb):
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()

    captured = CapturedStep(step, dev, optimizer=opt)
    batch = (Tensor._make(X[:16], dev), Tensor._make(Y[:16], dev))
    captured(*batch)
    captured(*batch)
    assert (captured.captures, captured.replays) == (1, 1)
    _replace_parameter_arrays(model)
    captured(*batch)  # eager, then recorded on the new arrays
    assert (captured.captures, captured.replays, captured.graphs) == (2, 1, 1)
    captured(*batch)
    assert (captured.captures, captured.replays) == (2, 2)
    opt.param_groups[0]["lr"] = 0.05  # a schedule's work: refresh_lr hands it to the graph
    captured(*batch)
    assert (captured.captures, captured.replays) == (2, 3)
    opt.param_groups[0]["momentum"] = 0.5  # frozen into the recorded kernels' arguments: record again
    captured(*batch)
    captured(*batch)
    assert (captured.captures, captured.replays) == (3, 4)
    # a setting replaced by an array (== elementwise, no truth value) counts as changed, not an error
    from devgrad.capture_deps import differs
    assert differs({"betas": np.array([0.9, 0.99])}, {"betas": np.array([0.9, 0.999])})
    same = {"betas": np.array([0.9, 0.99])}
    assert not differs(same, dict(same))  # the very array object: equal without comparing elements


def test_training_goes_on_after_parameter_arrays_are_replaced(device):
    """On a GPU: after ``p.data = ...`` the captured step trains the new arrays, exactly as an
    eager step does."""
    if not device.supports_graphs:
        pytest.skip("needs a GPU: the CPU never captures")
    weights = []
    for graphed in (False, True):
        model = nn.MLP([5, 8, 3], device=device, generator=np.random.default_rng(0))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, capturable=graphed)

        def step(xb, yb, model=model, opt=opt):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

        captured = CapturedStep(step, device, optimizer=opt if graphed else None, enabled=graphed)
        for i in range(6):
            if i == 3:
                _replace_parameter_arrays(model)
            captured(dg.tensor(X[:16], device=device), dg.tensor(Y[:16], device=device))
        weights.append([p.numpy() for p in model.parameters()])
    assert captured.captures == 2 and captured.replays == 4
    for a, b in zip(*weights):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(("setting", "dropout", "why"), [
    ("auto", 0.0, None), ("auto", 0.2, "model.dropout > 0: a replayed step would reuse one dropout mask"),
    (False, 0.0, "train.capture is false"), (True, 0.0, None),
])
def test_the_runner_says_whether_it_captures_the_step_and_why_not(tmp_path, setting, dropout, why):
    """auto captures whenever the step allows it, on a GPU (a stand-in here: the choice, not the
    capture) and on the CPU alike; the choice and its reason go to summary.json and train.log."""
    from devgrad.experiment import spec as spec_module
    from devgrad.experiment import plan as plan_module

    resolved = spec_module.resolve({"data": {"source": "xor"}, "model": {"dropout": dropout},
                                    "train": {"capture": setting}})
    gpu_like = _NoHostReadsDevice(lambda: [])
    assert plan_module.graph_choice(resolved, gpu_like) == why
    assert plan_module.graph_choice(resolved, dg.device("cpu")) == why
    result = commands.run(resolved, overrides=["train.epochs=2", "device=cpu"], out=tmp_path, quiet=True)
    log = (result.run_dir / "train.log").read_text()
    report = result.summary["capture"]
    if why is None:
        assert f"train.capture {setting}: the training step is captured and replayed as plans of NumPy calls" in log
        assert report["active"] and report["why_not"] is None
    else:
        assert f"train.capture {setting}: steps run eagerly ({why})" in log
        assert not report["active"] and report["why_not"] == why


def test_the_older_name_cuda_graph_is_the_same_setting_and_not_both():
    from devgrad.experiment import spec as spec_module

    assert spec_module.resolve({"data": {"source": "xor"}, "train": {"cuda_graph": False}}).train.capture is False
    with pytest.raises(spec_module.SpecError, match="older name of train.capture"):
        spec_module.resolve({"data": {"source": "xor"}, "train": {"cuda_graph": False, "capture": True}})


@pytest.mark.parametrize("loss", ["cross_entropy", "bce", "logistic", "hinge", "mse", "mae", "huber"])
def test_the_runners_step_does_nothing_a_capture_refuses(tmp_path, monkeypatch, loss):
    """What would silently freeze in a replay raises CaptureError while a step is recorded (above);
    the runner's own step must trip none of it, or a GPU run would quietly train eagerly. Its step
    runs here on the CPU as a GPU run's would be recorded: capturable optimizer, schedule
    outside, the recording mark set around every step."""
    from devgrad.experiment import plan, run, trainer
    from tests.support.run_helpers import SMALL

    monkeypatch.setattr(plan, "graph_choice", lambda spec, device: None)  # as on a GPU: capture it
    real_step, steps = trainer.Trainer._step, []

    def recorded(self, xb, yb):
        capturing.state.device = self.device
        try:
            steps.append(real_step(self, xb, yb))
        finally:
            capturing.state.device = None

    monkeypatch.setattr(trainer.Trainer, "_step", recorded)
    spec = {**SMALL, "loss": loss, "schedule": {"name": "cosine"}, "plots": {"enabled": False},
            "train": {**SMALL["train"], "epochs": 2, "clip_grad_norm": 1.0}}
    if loss in ("mse", "mae", "huber"):
        spec["task"] = "regression"
    result = run(spec, out=tmp_path, quiet=True)
    assert result.summary["status"] == "completed" and len(steps) >= 3
    # on the CPU the step itself is captured too (replays call no _step): with nothing refused
    assert result.summary["capture"]["setting"] == "auto" and result.summary["capture"]["why_not"] is None


def test_a_failed_capture_is_told_to_on_failure_instead_of_a_warning(device, recwarn):
    """The experiment runner passes ``on_failure`` to say why in its log: no RuntimeWarning then."""
    dev = _graph_device(device)
    told: list[str] = []
    drop = nn.Dropout(0.5, seed=1)
    step = CapturedStep(lambda xb: drop(xb) * 1.0, dev, on_failure=told.append)
    for _ in range(3):
        step(dg.ones((8, 4), device=dev))
    assert len(told) == 1 and told[0].startswith("could not capture the step") and "dropout" in told[0]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
