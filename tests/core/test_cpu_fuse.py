"""The passes that make a recorded CPU plan cheaper to replay (``devgrad.cpu_fuse``) keep its bits.

A sigmoid MLP trained with binary cross-entropy and plain SGD (the bench's tiny step) runs
eagerly and through ``CapturedStep`` from the same start; weights, gradients and losses must
agree byte for byte, and the plan must show each pass's work.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import devgrad as dg
from devgrad import cpu_capture, cpu_fold, cpu_fuse, cpu_plan, nn, optim
from devgrad.capture import CapturedStep
from devgrad.nn import functional as F
from tests.support.relu_steps import relu_gradient_run

rng = np.random.default_rng(11)
X = rng.standard_normal((64, 2)).astype(np.float32)
Y = (rng.random(64) > 0.5).astype(np.float32)


def _binary_step(lr: float = 0.1):
    """A 2-8-8-1 sigmoid MLP, its capturable SGD and one BCE-with-logits step of it."""
    model = nn.MLP([2, 8, 8, 1], activation="sigmoid", generator=np.random.default_rng(3))
    opt = optim.SGD(model.parameters(), lr=lr, capturable=True)

    def step(xb, yb):
        loss = F.binary_cross_entropy_with_logits(model(xb).reshape(-1), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def _train(captured: bool, starts=(0, 32, 0, 32, 0, 32), rows=(32,), x=X, schedule=False):
    """Steps on the rows from each of ``starts`` (the number of rows cycling through ``rows``), with a
    rate halved after every step when ``schedule``: weights, gradients, losses and the CapturedStep."""
    model, opt, step = _binary_step()
    sched = optim.StepLR(opt, step_size=1, gamma=0.5) if schedule else None
    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    losses = []
    for s, n in zip(starts, itertools.cycle(rows)):
        losses.append(run(dg.tensor(x[s:s + n]), dg.tensor(Y[s:s + n])).numpy().tobytes())
        if sched is not None:
            sched.step()
    params = list(model.parameters())
    return [p.numpy().tobytes() for p in params], [p.grad.numpy().tobytes() for p in params], losses, run


def _plan_of(run: CapturedStep) -> cpu_plan.Plan:
    return next(iter(run._graphs.values()))[1]


def test_the_binary_sigmoid_step_replays_bit_for_bit():
    eager = _train(False)
    captured = _train(True)
    assert captured[3].replays == 4 and captured[3].failure is None
    assert captured[:3] == eager[:3]


def _views(args) -> list:
    return [a for a in args if isinstance(a, np.ndarray)]


def test_each_view_is_one_array_object_in_the_replayed_calls():
    """An in-place call (``x += 1``) takes the very same object as input and output, which NumPy
    recognises at once (two objects for one view cost it an overlap proof)."""
    plan = _plan_of(_train(True)[3])
    pairs = [(a, b) for _, args in plan.steps for a, b in itertools.combinations(_views(args), 2)
             if a.__array_interface__ == b.__array_interface__ and a.dtype == b.dtype]
    assert len(pairs) > 5 and all(a is b for a, b in pairs)
    x = np.zeros(3, np.float32)
    [(_, args)] = cpu_fuse.shared_views([(np.add, (x.view(np.ndarray), 1, x.view(np.ndarray)))])
    assert args[0] is args[2] and args[1] == 1


def test_calls_a_replay_need_not_make_are_left_out_and_the_bits_stay():
    """The loss's NaN check is one Python comparison, its second sum (for the mean) is the first
    one's, and the seed gradient (1 times 1/n) and the rate cast to float32 are made once."""
    plan = _plan_of(_train(True)[3])
    functions = [fn for fn, _ in plan.steps]
    assert cpu_fold._same_nan in functions and np.not_equal not in functions
    summed = [id(args[0]) for fn, args in plan.steps if getattr(fn, "__name__", "") == "reduce"]
    assert len(summed) == 4 and len(set(summed)) == 4  # the loss once, each bias gradient once
    assert not any(fn is np.copyto for fn in functions)
    assert any(fn is np.copyto and args[1].dtype == np.float64 for fn, args in plan.steady)  # the rate


def test_a_new_rate_reaches_every_plan_of_the_step():
    """Two batch sizes (two plans), the rate halved after every step: each plan casts the rate it
    replays with afresh, also when the other plan saw the change first."""
    starts = (0, 32, 0, 32, 0, 32, 0, 32, 0, 32)
    eager = _train(False, starts=starts, rows=(32, 16), schedule=True)
    captured = _train(True, starts=starts, rows=(32, 16), schedule=True)
    assert captured[3].replays == 6 and captured[:3] == eager[:3]


def test_a_nan_loss_total_takes_the_eager_branch():
    """A logit of inf (an input of inf) makes the loss's sum NaN, where the eager step takes its
    branch for infinite logits: that replay is dropped and the step runs eagerly."""
    x = X.copy()
    x[40, 0] = np.inf  # in the rows 32..63: the checked first replay and the later ones starting at 32
    eager = _train(False, x=x, starts=(0, 0, 0, 32, 0, 0))
    captured = _train(True, x=x, starts=(0, 0, 0, 32, 0, 0))
    assert captured[3].diverged >= 1 and captured[3].replays + captured[3].diverged == 4
    assert captured[:3] == eager[:3]


def test_a_comparison_guard_raises_when_the_outcome_changes():
    x, flag = np.array(1.5, np.float32), np.zeros((), np.bool_)
    for compare, recorded in ((np.not_equal, b"\x00"), (np.equal, b"\x01")):
        x[()] = 1.5
        [(fn, args)] = cpu_fold.guards([(compare, (x, x, flag)), (cpu_capture._same_bytes, (flag, recorded))])
        fn(*args)
        x[()] = np.nan
        with pytest.raises(cpu_plan.DivergedError):
            fn(*args)
    labels = np.array(3, np.int64)
    [(fn, args)] = cpu_fold.guards([(np.less, (labels, 10, flag)), (cpu_capture._same_bytes, (flag, b"\x01"))])
    fn(*args)
    labels[()] = 10
    with pytest.raises(cpu_plan.DivergedError):
        fn(*args)
    kept = [(np.less, (x, 0.1, flag)), (cpu_capture._same_bytes, (flag, b"\x00"))]  # 0.1 rounds in float32
    assert cpu_fold.guards(kept) == kept


def _buffers(n: int) -> list:
    return [np.zeros(4, np.float32) for _ in range(n)]


def test_only_calls_on_unchanging_inputs_into_buffers_no_one_else_writes_are_hoisted():
    one, half = np.array(1, np.float32), np.array(0.5, np.float32)
    seed, scaled, other = _buffers(3)
    steps = [(np.copyto, (seed, one)), (np.multiply, (seed, half, scaled)), (np.add, (scaled, other, other))]
    kept, steady = cpu_fold.hoist(steps, [seed, scaled, other], [], [], {id(one), id(half)})
    assert steady == steps[:2] and kept == steps[2:]
    kept, steady = cpu_fold.hoist(steps, [seed, scaled, other], [scaled], [], {id(one), id(half)})
    assert steady == steps[:1]  # the caller sees ``scaled``: it is written on every replay
    again = [*steps, (np.copyto, (seed, other))]
    assert cpu_fold.hoist(again, [seed, scaled, other], [], [], {id(one), id(half)})[1] == []
    rate = np.array(0.1)
    kept, steady = cpu_fold.hoist([(np.copyto, (seed, rate, "unsafe"))], [seed], [], [rate], set())
    assert steady and not kept  # a learning rate: rewritten only by refresh_lr
    assert cpu_fold.hoist([(np.copyto, (seed, rate, "unsafe"))], [seed], [], [], set())[1] == []


def test_a_repeated_call_is_dropped_only_while_its_inputs_are_unchanged():
    x, first, again, out = _buffers(4)
    total, total2 = np.zeros((), np.float32), np.zeros((), np.float32)
    steps = [(np.add.reduce, (x, None, None, total, False)), (np.negative, (first, first)),
             (np.add.reduce, (x, (0,), None, total2, False)), (np.multiply, (total2, x, out))]
    folded = cpu_fold.repeats(steps, [x, first, again, out, total, total2], [out])
    assert len(folded) == 3 and folded[2] == (np.multiply, (total, x, out))
    steps[1] = (np.negative, (x, x))  # the input changes in between: the sums differ
    assert cpu_fold.repeats(steps, [x, first, again, out, total, total2], [out]) == steps


SPECIAL = np.array([0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.nan, -np.nan, 1e-40, -3e-39, 3.4e38, 1e-7, 7.0])


def test_a_one_element_input_of_a_larger_call_replays_as_a_0d_view_with_the_ufuncs_bits():
    """A one-element input broadcast over a larger output becomes a 0-d view: the same bits for
    inf, NaN (of either sign), -0.0 and subnormals on both sides."""
    for dtype, fn in itertools.product([np.float32, np.float64], [np.add, np.subtract, np.multiply, np.true_divide]):
        values = SPECIAL.astype(dtype)
        col = np.repeat(values, 2).reshape(-1, 1)
        for k, first in itertools.product(range(len(values)), [False, True]):
            one, by_ufunc, by_view = values[k:k + 1], np.empty_like(col), np.empty_like(col)
            operands = (one, col) if first else (col, one)
            [(step, args)] = cpu_fuse.scalars([(fn, (*operands, by_view))])
            with np.errstate(all="ignore"):
                fn(*operands, by_ufunc)
                step(*args)
            assert args[1 - first].shape == () and by_view.tobytes() == by_ufunc.tobytes()
    x = np.zeros(1, np.float32)
    assert cpu_fuse.scalars([(np.add, (x, x, x))]) == [(np.add, (x, x, x))]  # one element in place: as it is


def test_a_column_reduced_down_its_length_replays_on_its_1d_view_with_the_same_bits():
    for n, dtype, ufunc in itertools.product([2, 7, 9, 32, 129, 8193], [np.float32, np.float64], [np.add, np.maximum]):
        column = (rng.standard_normal((n, 1)) * 10.0 ** rng.integers(-20, 20, (n, 1))).astype(dtype)
        column[n // 2] = -0.0
        by_view, by_ufunc = np.empty(1, dtype), np.empty(1, dtype)
        [(fn, args)] = cpu_fuse.scalars([(ufunc.reduce, (column, (0,), None, by_view, False))])
        fn(*args)
        ufunc.reduce(column, (0,), None, by_ufunc, False)
        assert args[0].shape == (n,) and by_view.tobytes() == by_ufunc.tobytes()


def _selection_run(captured: bool, rows: int):
    """max(x, 0) on ``rows`` x 64 values (its gradient: np.where(x < 0, 0, g), a selection of zeros)
    times an upstream gradient holding inf, -inf, NaN and -0.0 where it keeps and drops its input:
    the weight's gradient after each step."""
    draw = np.random.default_rng(rows)
    values, scale = draw.standard_normal((2, rows, 64)).astype(np.float32)
    scale.flat[::7], scale.flat[1::7], scale.flat[2::7], scale.flat[3::7] = np.inf, -np.inf, np.nan, -0.0
    return relu_gradient_run(values, scale, captured, act=lambda t: dg.maximum(t, 0.0))


def test_a_large_selection_of_zeros_is_made_in_bytes_and_widened_with_the_same_bits():
    for rows in (8, 128):  # 512 values: one add with a cast; 8192: a byte pass and a widening copy
        eager, _ = _selection_run(False, rows)
        captured, run = _selection_run(True, rows)
        steps = _plan_of(run).steps
        assert any(fn is np.bitwise_and for fn, _ in steps)
        bytes_mask = any(fn is np.subtract and args[0].dtype == np.int8 for fn, args in steps)
        assert bytes_mask == (rows == 128) and run.replays == 3 and captured == eager
