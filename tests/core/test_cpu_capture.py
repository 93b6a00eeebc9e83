"""CapturedStep on the CPU: a step recorded as a plan of NumPy calls replays bit for bit.

Each test trains twice from the same start, once eagerly and once through CapturedStep with
the same (capturable) optimizer, and compares every weight, every returned loss and a metric
sum accumulated in place, byte for byte. Steps that a replay could not repeat run eagerly,
with the reason; so do single replays whose recorded branch goes the other way.
"""

from __future__ import annotations

import contextlib

import itertools
import warnings

import numpy as np
import pytest

import devgrad as dg
from devgrad import cpu_fuse, cpu_plan, nn, optim
from devgrad.capture import CapturedStep
from devgrad.core import Tensor
from devgrad.nn import functional as F
from tests.support.helpers import training_step
from tests.support.relu_steps import relu_gradient_run

rng = np.random.default_rng(5)
X = rng.standard_normal((60, 5)).astype(np.float32)
Y = rng.integers(0, 3, 60)
BATCHES = (0, 20, 40, 0, 20, 40, 0, 20)  # 8 steps of 20 rows: eager, recorded, checked, 5 replays

LOSSES = {
    "cross_entropy": lambda out, y: F.cross_entropy(out, y),
    "cross_entropy_smoothed": lambda out, y: F.cross_entropy(out, y, label_smoothing=0.1),
    "bce": lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], (y == 1).astype("float32")),
    "logistic": lambda out, y: F.logistic_loss(out[:, 0], (y == 1).astype("float32") * 2 - 1),
    "hinge": lambda out, y: F.hinge_loss(out[:, 0], (y == 1).astype("float32") * 2 - 1),
    "mse": lambda out, y: F.mse_loss(out[:, 0], y.astype("float32")),
    "mae": lambda out, y: F.l1_loss(out[:, 0], y.astype("float32")),
    "huber": lambda out, y: F.huber_loss(out[:, 0], y.astype("float32")),
    "nll": lambda out, y: F.nll_loss(out.log_softmax(axis=-1), y),
}
OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1, capturable=True),
    "sgd_nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, capturable=True),
    "adam": lambda p: optim.Adam(p, lr=0.01, weight_decay=1e-3, capturable=True),
    "adam_amsgrad": lambda p: optim.Adam(p, lr=0.01, amsgrad=True, capturable=True),
    "adamw": lambda p: optim.AdamW(p, lr=0.01, capturable=True),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True, capturable=True),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.05, lr_decay=0.01, capturable=True),
}
SCHEDULES = {
    "step": lambda o: optim.StepLR(o, step_size=1, gamma=0.5),
    "exponential": lambda o: optim.ExponentialLR(o, gamma=0.9),
    "cosine": lambda o: optim.CosineAnnealingLR(o, t_max=4),
    "linear": lambda o: optim.LinearLR(o, total_iters=3),
}


def _train(captured: bool, activation="tanh", loss="cross_entropy", optimizer="adam", clip=None, schedule=None,
           dropout=0.0, batches=BATCHES, x=X, y=Y):
    """The weights, the losses each call returned and a float64 sum kept in place by the step."""
    model = nn.MLP([5, 8, 8, 3], activation=activation, dropout=dropout, generator=np.random.default_rng(0))
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.reseed(7)
    opt = OPTIMIZERS[optimizer](model.parameters())
    sched = SCHEDULES[schedule](opt) if schedule else None
    total = Tensor._make(np.zeros((), dtype=np.float64), dg.device("cpu"))

    def step(xb, yb):
        value = LOSSES[loss](model(xb), yb)
        opt.zero_grad()
        value.backward()
        if clip == "norm":
            optim.clip_grad_norm_(model.parameters(), 0.5)
        elif clip == "value":
            optim.clip_grad_value_(model.parameters(), 0.05)
        opt.step()
        total.data += value.data
        return value

    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    losses = []
    for i, start in enumerate(batches):
        losses.append(run(dg.tensor(x[start:start + 20]), dg.tensor(y[start:start + 20])).numpy().tobytes())
        if sched is not None and i % 2:
            sched.step()
    weights = [p.numpy().tobytes() for p in model.parameters()]
    return weights, losses, total.data.tobytes(), run


def _same_as_eager(**kwargs):
    eager = _train(False, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a capture that fell back would warn: it must not here
        captured = _train(True, **kwargs)
    assert captured[3].replays == len(BATCHES) - 2 and captured[3].failure is None
    assert captured[:3] == eager[:3]  # weights, every returned loss, the in-place sum: byte for byte


@pytest.mark.parametrize("activation", nn.HIDDEN_ACTIVATIONS)
def test_every_activation_replays_bit_for_bit(activation):
    _same_as_eager(activation=activation)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_replays_bit_for_bit(loss):
    _same_as_eager(loss=loss, activation="relu")


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_optimizer_replays_bit_for_bit(optimizer):
    _same_as_eager(optimizer=optimizer)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("clip", [None, "norm", "value"])
def test_clipping_and_schedules_replay_bit_for_bit(schedule, clip):
    """A schedule changes the rate between calls (refreshed before each replay); clipping scales
    the gradients inside the step."""
    _same_as_eager(schedule=schedule, clip=clip, optimizer="sgd_nesterov")


@pytest.mark.parametrize("clip", [None, "norm", "value"])
def test_plain_sgd_merged_into_one_multiply_replays_bit_for_bit(clip):
    """Plain SGD scales every gradient with one call over one array that holds them all; clipping
    (which scales them in place first) and a schedule (a new rate each time) see the same arrays."""
    _same_as_eager(schedule="step", clip=clip, optimizer="sgd")


def _sgd_grads(captured: bool) -> tuple:
    model, opt, step = _sgd_relu_step([5, 8, 8, 3])
    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    for start in BATCHES:
        run(dg.tensor(X[start:start + 20]), dg.tensor(Y[start:start + 20]))
    return [p.grad.numpy().tobytes() for p in model.parameters()], run


def test_the_merged_sgd_update_keeps_each_gradient_where_its_parameter_shows_it():
    eager, _ = _sgd_grads(False)
    captured, run = _sgd_grads(True)
    plan = next(iter(run._graphs.values()))[1]
    flat = [args[0] for fn, args in plan.steps if fn is np.multiply and args[0].ndim == 1 and args[0].size > 80]
    assert len(flat) == 1 and all(np.shares_memory(p.grad.data, flat[0]) for p, _ in plan.grads)
    assert run.replays == len(BATCHES) - 2 and captured == eager


def _sgd_run(captured: bool) -> tuple:
    model, opt, step = _sgd_relu_step([5, 8, 8, 3])
    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    for start in BATCHES:
        run(dg.tensor(X[start:start + 20]), dg.tensor(Y[start:start + 20]))
    return [(p.numpy().tobytes(), p.grad.numpy().tobytes()) for p in model.parameters()], run


def test_a_merged_sgd_update_larger_than_its_scratch_goes_piece_by_piece(monkeypatch):
    """Gradients past the scratch's size are scaled a piece at a time into one small scratch, each
    piece subtracted from its parameters (a parameter split across pieces, pieces holding several)
    before the next is scaled: the weights and gradients of the eager steps."""
    monkeypatch.setattr(cpu_fuse, "_SCRATCH_BYTES", 64)  # 16 float32s: the 5-8-8-3 MLP's 147 (192 on lines) in 12
    eager, _ = _sgd_run(False)
    captured, run = _sgd_run(True)
    plan = next(iter(run._graphs.values()))[1]
    grads = plan.grads[0][1].data.base  # the one array that holds every gradient
    scaled = [args for fn, args in plan.steps if fn is np.multiply and np.shares_memory(args[0], grads)]
    assert len(scaled) == 12 and all(args[2].size <= 16 and np.shares_memory(args[2], scaled[0][2]) for args in scaled)
    subtracted = [args[0] for fn, args in plan.steps if fn is np.subtract and args[0] is args[2]]
    assert len(subtracted) > 12 and any(a.size < 16 for a in subtracted)
    assert run.replays == len(BATCHES) - 2 and captured == eager


def test_a_capturable_optimizer_steps_exactly_as_a_plain_one():
    """The runner makes its optimizer capturable when it captures; its eager steps (the first ones,
    or all when capture is refused) must be the plain optimizer's, bit for bit."""
    for name, make in OPTIMIZERS.items():
        results = []
        for capturable in (False, True):
            model = nn.MLP([5, 8, 3], activation="tanh", generator=np.random.default_rng(0))
            opt = make(model.parameters())
            opt.capturable = capturable
            for start in (0, 20, 40):
                loss = F.cross_entropy(model(dg.tensor(X[start:start + 20])), dg.tensor(Y[start:start + 20]))
                opt.zero_grad()
                loss.backward()
                opt.step()
            results.append([p.numpy().tobytes() for p in model.parameters()])
        assert results[0] == results[1], name


def test_dropout_is_refused_and_its_mask_stream_is_the_eager_one():
    """Dropout draws are refused while recording (a replay would reuse one mask), before anything
    is drawn: the steps run eagerly and draw exactly the eager run's masks."""
    eager = _train(False, dropout=0.3)
    with pytest.warns(RuntimeWarning, match="random numbers .a dropout mask. were drawn"):
        captured = _train(True, dropout=0.3)
    assert captured[3].replays == 0 and "recorded for replay on cpu" in captured[3].failure
    assert captured[:3] == eager[:3]


def _branching_run(captured: bool, x):
    """A step with a branch on its batch: rows with a value above 3 halve the loss."""
    model = nn.MLP([5, 8, 3], activation="relu", generator=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)

    def step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        if (xb.data > 3).any():
            loss = loss * 0.5
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    losses = [run(dg.tensor(x[s:s + 20]), dg.tensor(Y[s:s + 20])).numpy().tobytes() for s in BATCHES]
    return [p.numpy().tobytes() for p in model.parameters()], losses, run


def test_a_replay_whose_branch_goes_the_other_way_runs_that_step_eagerly():
    """A value the step reads into Python (here a branch on the batch) is checked on every replay.
    A batch that makes it differ drops that replay before it changed anything; the step runs
    eagerly, and training goes on with replays after it, still equal to eager training."""
    x = np.clip(X, -2.5, 2.5)
    x[45, 0] = 4.0  # rows 40..59: the third step (the checked first replay) and the sixth go the other way
    eager = _branching_run(False, x)
    captured = _branching_run(True, x)
    assert captured[2].diverged == 2 and captured[2].replays == len(BATCHES) - 4
    assert captured[:2] == eager[:2]


def test_an_unrecordable_step_is_caught_before_it_replays_wrongly():
    """A step that computes outside NumPy's protocols (here: a value taken through the buffer
    protocol, which no tracer sees) would replay a frozen value; the first replay is checked
    against an eager step, differs, and the run goes on eagerly with the eager results."""
    model = nn.MLP([5, 3], generator=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)

    def step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        frozen = np.frombuffer(memoryview(np.ascontiguousarray(xb.data.view(np.ndarray))), dtype=np.float32)
        model.linears[0].bias.grad.data[0] += frozen[0]  # the batch's first value, read outside NumPy calls
        opt.step()
        return loss

    run = CapturedStep(step, "cpu", optimizer=opt)
    with pytest.warns(RuntimeWarning, match="differs from the eager step"):
        for start in (0, 20, 40, 0):
            run(dg.tensor(X[start:start + 20]), dg.tensor(Y[start:start + 20]))
    assert run.replays == 0 and not run.enabled


def test_a_value_read_after_the_update_is_refused():
    model = nn.MLP([5, 3], generator=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)

    def step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.data)  # after the update: a replay could not be dropped cleanly here

    run = CapturedStep(step, "cpu", optimizer=opt)
    xb, yb = dg.tensor(X[:20]), dg.tensor(Y[:20])
    run(xb, yb)
    before = [p.numpy().copy() for p in model.parameters()]
    with pytest.warns(RuntimeWarning, match="after it had changed its parameters"):
        run(xb, yb)  # the failed recording is undone, then the step runs eagerly: one update
    again = nn.MLP([5, 3], generator=np.random.default_rng(0))
    again_opt = optim.SGD(again.parameters(), lr=0.1, capturable=True)
    for _ in range(2):
        loss = F.cross_entropy(again(xb), yb)
        again_opt.zero_grad()
        loss.backward()
        again_opt.step()
    assert [p.numpy().tobytes() for p in model.parameters()] == [p.numpy().tobytes() for p in again.parameters()]
    assert any(not np.array_equal(a, p.numpy()) for a, p in zip(before, model.parameters()))


def _plain_step(model, opt):
    """The step these tests train with: cross entropy, zero_grad, backward, the optimizer's step."""
    return training_step(opt, lambda xb, yb: F.cross_entropy(model(xb), yb))


def _sgd_relu_step(sizes: list) -> tuple:
    """A ReLU MLP of ``sizes``, its capturable SGD and one cross-entropy training step of it."""
    model = nn.MLP(sizes, activation="relu", generator=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)
    return model, opt, _plain_step(model, opt)


def _recorded_sgd_plan(sizes: list) -> tuple:
    """The plan of one SGD step of a ReLU MLP of ``sizes`` on 20 rows (recorded after an eager step)."""
    model, opt, step = _sgd_relu_step(sizes)
    xb, yb = dg.tensor(X[:20]), dg.tensor(Y[:20])
    step(xb, yb)
    return cpu_plan.record(step, (xb, yb), dg.device("cpu"), list(model.parameters()), opt), model


def test_a_plan_is_a_flat_list_of_numpy_calls_into_its_own_buffers():
    plan, model = _recorded_sgd_plan([5, 8, 3])
    assert all(callable(fn) and isinstance(args, tuple) for fn, args, _ in plan.calls)
    assert not any(isinstance(a, Tensor) for _, args, _ in plan.calls for a in args)
    assert len(plan.written) == len(list(model.parameters()))  # each parameter (the update's scratch: the plan's)
    assert type(plan.result.data) is np.ndarray  # the plan's buffer, no tracer left


def _relu_special_run(captured: bool):
    """A ReLU whose upstream gradient holds inf, -inf, NaN and -0.0 where the gradient is kept and
    where it is dropped: the replayed selection must give the eager bits for each."""
    return relu_gradient_run(np.array([[1.5, -2.0, 0.0, 3.0], [-1.0, 2.5, -0.5, 0.25]], np.float32),
                             np.array([[np.inf, -np.inf, np.nan, -0.0], [np.nan, -0.0, np.inf, 1.0]], np.float32),
                             captured)


def test_a_relu_gradient_of_inf_nan_and_negative_zero_replays_bit_for_bit():
    eager, _ = _relu_special_run(False)
    captured, run = _relu_special_run(True)
    plan = next(iter(run._graphs.values()))[1]
    # the selection as g's bits times 0 or 1 (the ReLU kernel's integer product), no masked copy
    assert any(fn is np.multiply and args[0].dtype == np.int32 for fn, args in plan.steps)
    assert not any(fn is np.copyto and len(args) > 3 for fn, args in plan.steps)
    assert run.replays == 3 and captured == eager


def test_the_plans_buffers_start_on_cache_lines_at_staggered_page_offsets():
    """Arrays malloc hands out for one size tend to share their offset within a page, where a call
    reading one and writing the next (4K aliasing) runs many times slower: the plan places each
    buffer itself, on a 64-byte line, the neighbours at different offsets."""
    plan, model = _recorded_sgd_plan([5, 64, 64, 3])
    starts = [b.ctypes.data for b in plan.buffers]
    assert len(starts) > 20 and all(s % 64 == 0 for s in starts)
    offsets = [s % 4096 for s in starts]
    assert all(a != b for a, b in itertools.pairwise(offsets))
    assert all(p.grad.data.base is not None for p in model.parameters())  # the plan's buffers, not copies


def test_batches_with_other_label_ranges_replay():
    """The loss checks that the labels are in range by reading one value back (whether they all are),
    not the smallest and largest label: a batch without the first or the last class replays too."""
    labels = np.tile([0, 1, 2, 1], 15)
    labels[20:40] = 1  # the second batch holds class 1 only
    eager = _train(False, activation="relu", y=labels)
    captured = _train(True, activation="relu", y=labels)
    assert captured[3].diverged == 0 and captured[3].replays == len(BATCHES) - 2
    assert captured[:3] == eager[:3]
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\], got values from 0 to 3"):
        _train(True, activation="relu", y=np.where(np.arange(60) == 45, 3, labels))


def _refilled_run(captured: bool):
    """Steps on one input array refilled in place between calls, then one of another layout."""
    model, opt, step = _sgd_relu_step([5, 8, 3])
    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    xb, yb = dg.tensor(X[:20]), dg.tensor(Y[:20])
    losses = []
    for start in (0, 20, 40, 0, 20, 40):
        xb.data[...] = X[start:start + 20]
        losses.append(run(xb, yb).numpy().tobytes())
    fortran = Tensor._make(np.asfortranarray(X[20:40]), dg.device("cpu"))
    losses.append(run(fortran, yb).numpy().tobytes())
    losses.append(run(xb, yb).numpy().tobytes())
    return [p.numpy().tobytes() for p in model.parameters()], losses, run, xb


def test_a_replay_reads_an_input_where_it_is_or_copies_it_in():
    """An input the plan's calls take only whole is read from the caller's array itself, without a
    copy into the static buffer: an array refilled in place is read afresh. Another layout (here
    Fortran order) is copied in, and the next call points the calls at the caller's array again."""
    eager = _refilled_run(False)
    captured = _refilled_run(True)
    run, xb = captured[2], captured[3]
    plan = next(iter(run._graphs.values()))[1]
    assert any(a is xb.data for _, args in plan.steps for a in args)
    assert run.replays == 6 and captured[:2] == eager[:2]


def test_the_replayed_calls_take_exact_numbers_as_arrays_made_once():
    """``x + 1`` and ``1.0 - a`` replay with the number as a 0-d array of the operands' dtype (NumPy
    converts a Python number on every call); a number the dtype cannot hold exactly stays as it is."""
    plan, _ = _recorded_sgd_plan([5, 8, 3])
    assert cpu_fuse.constants([(np.add, (np.ones(2, np.float32), 1, np.empty(2, np.float32)))])[0][1][1].shape == ()
    kept = cpu_fuse.constants([(np.multiply, (np.ones(2, np.float32), 0.1, np.empty(2, np.float32)))])[0][1]
    assert kept[1] == 0.1 and type(kept[1]) is float
    floats = [args for fn, args in plan.steps
              if type(fn) is np.ufunc and any(getattr(a, "dtype", None) == np.float32 for a in args[:-1])]
    assert any(fn is np.copyto and isinstance(args[1], np.ndarray) and args[1].shape == ()  # the seed's 1.0
               and args[1].dtype == np.float32 for fn, args in [*plan.steps, *plan.steady])
    assert all(float(np.float32(a)) != a for args in floats for a in args if type(a) in (int, float))


def test_small_matrix_products_replay_through_dot_with_matmuls_bits():
    """A matmul of two matrices with no side of 1, of a matrix and a column or of a row and a matrix
    replays as np.dot (the same BLAS call, less overhead); a column times a row (no BLAS in
    matmul) or a matrix times its own transpose stays a matmul."""
    a, b = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    col, row = np.ones((3, 1), np.float32), np.ones((1, 5), np.float32)
    steps = cpu_fuse.dots([(np.matmul, (a, b, np.empty((6, 5), np.float32))),
                           (np.matmul, (a, col, np.empty((6, 1), np.float32))),
                           (np.matmul, (a[:, :1], row, np.empty((6, 5), np.float32))),
                           (np.matmul, (a, a.T, np.empty((6, 6), np.float32)))])
    assert [fn for fn, _ in steps] == [np.dot, np.dot, np.matmul, np.matmul]
    shapes = [(2, 2, 2), (20, 5, 8), (33, 17, 9), (2, 2, 1), (32, 16, 1), (1, 2, 2), (1, 32, 16), (1, 40, 3)]
    for (m, n, p), (ta, tb), dtype in itertools.product(shapes,
                                                        itertools.product([False, True], repeat=2),
                                                        [np.float32, np.float64]):
        x = rng.standard_normal((n, m) if ta else (m, n)).astype(dtype)
        y = rng.standard_normal((p, n) if tb else (n, p)).astype(dtype)
        x, y = x.T if ta else x, y.T if tb else y
        x[0, 0], y[-1, -1] = -0.0, np.inf if n > 2 else np.nan
        by_dot, by_matmul = np.full((m, p), np.nan, dtype), np.empty((m, p), dtype)
        [(fn, args)] = cpu_fuse.dots([(np.matmul, (x, y, by_dot))])
        with np.errstate(invalid="ignore"):  # inf·0 and NaN on purpose (BLAS may raise the flag)
            fn(*args)
            np.matmul(x, y, by_matmul)
        assert fn is np.dot and by_dot.tobytes() == by_matmul.tobytes()


class _Doubled(nn.Module):
    """A Linear whose output is doubled while a sub-module of it (which it never calls) is in training mode."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(5, 3, generator=np.random.default_rng(1))
        self.switch = nn.Identity()

    def forward(self, x):
        out = self.linear(x)
        return out * 2.0 if self.switch.training else out


def _trained(losses: list, model) -> tuple:
    """What a run left: its losses, and the model's parameters and gradients, as bytes."""
    return (losses, [p.numpy().tobytes() for p in model.parameters()],
            [None if p.grad is None else p.grad.numpy().tobytes() for p in model.parameters()])


def _batch(start: int) -> tuple:
    return dg.tensor(X[start:start + 20]), dg.tensor(Y[start:start + 20])


def test_a_module_switched_between_train_and_eval_between_replays_gets_its_new_mode():
    """A recording repeats the mode it was made in: a step after a module (here one the step never
    calls, only reads) switched mode runs in the new mode, as eagerly, and is recorded afresh."""
    modes = ["train"] * 4 + ["eval"] * 5 + ["train"] * 5
    results = []
    for captured in (False, True):
        model = _Doubled()
        opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)

        step = CapturedStep(_plain_step(model, opt), "cpu", optimizer=opt, enabled=captured)
        losses = []
        for mode, start in zip(modes, itertools.cycle((0, 20, 40))):
            model.switch.train(mode == "train")
            losses.append(step(*_batch(start)).numpy().tobytes())
        results.append((losses, [p.numpy().tobytes() for p in model.parameters()]))
    assert results[0] == results[1]
    assert step.captures == 3 and step.replays >= 6 and step.failure is None


def _change_the_model(model: nn.Sequential, change: str, hook_handle) -> None:
    if change == "layer frozen":
        model[0].weight.requires_grad_(False)
    elif change == "layer unfrozen":
        model[2].weight.requires_grad_(True)
    elif change == "forward hook added":
        model[2].register_forward_hook(lambda module, args, out: out * 0.5)
    elif change == "forward hook removed":
        hook_handle.remove()
    elif change == "setting changed":
        model[1].negative_slope = 0.5
    else:  # a parameter replaced on its module; the optimizer keeps the old one, as it would eagerly
        model[0].bias = nn.Parameter(model[0].bias.data * 0.5)


@pytest.mark.parametrize("change", ["layer frozen", "layer unfrozen", "forward hook added", "forward hook removed",
                                    "setting changed", "parameter replaced"])
def test_a_model_changed_between_replays_trains_as_eagerly(change):
    """A replay repeats the recorded step: a parameter frozen or unfrozen, a forward hook added or
    removed, a module's setting or parameter replaced since would be ignored by it. Such a change
    makes the next call run as a new one and record afresh; losses and weights stay the eager ones."""
    results = []
    for captured in (False, True):
        generator = np.random.default_rng(0)
        model = nn.Sequential(nn.Linear(5, 8, generator=generator), nn.LeakyReLU(0.1),
                              nn.Linear(8, 3, generator=generator))
        handle = model[2].register_forward_hook(lambda module, args, out: out + 1.0)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, capturable=True)
        model[2].weight.requires_grad_(change != "layer unfrozen")  # frozen from the start, to be unfrozen

        step = CapturedStep(_plain_step(model, opt), "cpu", optimizer=opt, enabled=captured)
        losses = []
        refused = captured and change == "parameter replaced"
        with pytest.warns(RuntimeWarning, match="adds to the gradients") if refused else contextlib.nullcontext():
            for i, start in enumerate(BATCHES * 2):
                if i == len(BATCHES):
                    _change_the_model(model, change, handle)
                losses.append(step(*_batch(start)).numpy().tobytes())
        results.append(_trained(losses, model))
    assert results[0] == results[1]
    if change == "parameter replaced":  # outside the optimizer, never zeroed: each step adds to its gradient
        assert (step.captures, step.replays, step.diverged) == (1, 6, 0)
        assert "adds to the gradients the parameters had when it began" in step.failure
    else:
        assert (step.captures, step.replays, step.failure, step.diverged) == (2, 12, None, 0)


@pytest.mark.parametrize("outside", ["set to None", "set to None, then kept", "filled with zeros", "kept"])
def test_gradients_the_step_did_not_compute_are_added_to_as_eagerly(outside):
    """A step without zero_grad adds to the gradients it finds. Set to None before every call (the
    step computes them afresh) it replays; a call that finds gradients after all (the caller
    stopped clearing them) is recorded afresh, and a step that adds to gradients it finds is
    refused (a replay would add to the recording's), with the reason: the weights stay the eager ones."""
    results = []
    for captured in (False, True):
        model = nn.MLP([5, 8, 3], generator=np.random.default_rng(0))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, capturable=True)

        def fn(xb, yb, model=model, opt=opt):
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            return loss

        failures = []
        step = CapturedStep(fn, "cpu", optimizer=opt, enabled=captured, on_failure=failures.append)
        losses = []
        for i, start in enumerate(BATCHES * 2):
            if outside in ("set to None", "filled with zeros") or (outside == "set to None, then kept" and i < 6):
                opt.zero_grad(set_to_none=outside != "filled with zeros")
            losses.append(step(*_batch(start)).numpy().tobytes())
        results.append((losses, [p.numpy().tobytes() for p in model.parameters()]))
    assert results[0] == results[1]
    if outside == "set to None":
        assert (step.captures, step.replays, failures) == (1, 14, [])
    else:
        assert len(failures) == 1 and "adds to the gradients the parameters had when it began" in failures[0]


@pytest.mark.parametrize("change", ["add_param_group", "appended to a group", "group replaced", "arrays replaced"])
def test_a_parameter_the_optimizer_gains_between_replays_is_trained_as_eagerly(change):
    """A plan updates the parameters the optimizer had when it was recorded, on the arrays they had:
    one added since (a new group, or appended to a group's list) would be left as it is by a
    replay, and a parameter given a new array would not be trained. Such a change makes the
    next calls run eagerly once and record afresh, and the weights stay those of the eager steps."""
    results = []
    for captured in (False, True):
        model = nn.MLP([5, 8, 3], generator=np.random.default_rng(0))
        first, *rest = model.parameters()
        opt = optim.SGD(rest, lr=0.1, momentum=0.9, capturable=True)

        def fn(xb, yb, model=model, opt=opt, first=first):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            first.grad = None  # not the optimizer's until the change: its gradient is not accumulated
            loss.backward()
            opt.step()
            return loss

        step = CapturedStep(fn, "cpu", optimizer=opt, enabled=captured)
        losses = []
        for i, start in enumerate(BATCHES * 2):
            if i == len(BATCHES):
                if change == "add_param_group":
                    opt.add_param_group({"params": [first], "lr": 0.05})
                elif change == "appended to a group":
                    opt.param_groups[0]["params"].append(first)
                elif change == "group replaced":
                    opt.param_groups[0] = {**opt.param_groups[0], "params": [first, *rest]}
                else:  # what model.to(...) or p.data = ... does: new arrays, the same values
                    for p in model.parameters():
                        p.data = p.data.copy()
            losses.append(step(*_batch(start)).numpy().tobytes())
        results.append(_trained(losses, model))
    assert results[0] == results[1]
    assert (step.captures, step.replays, step.failure, step.diverged) == (2, 12, None, 0)
