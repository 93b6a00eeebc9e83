"""Writes of graph values through views made by indexing, and views taken before such a write,
compared with PyTorch: values, aliases and gradients."""

import warnings

import numpy as np
import pytest

import devgrad as dg
from devgrad import optim
from devgrad.capture import CapturedStep
from tests.support.helpers import assert_program_matches_torch

# Statements run on devgrad and on PyTorch alike (``zeros``, ``tensor`` and ``w`` given): ``loss``
# and every name below it are compared, values and the gradient with respect to w.
PROGRAMS = {
    # a view taken before a write into its base, then written through: the base keeps the first write's graph
    "write_through_earlier_view": "x = zeros(4); v = x[0:2]; x[0] = w[0]; v[1] = w[1]; loss = (x * x).sum()",
    "earlier_view_imul": "b = zeros(4) * w[1]; v = b[1:3]; b += w[2]; v *= w[0]; loss = (b * b).sum() + (v * 3).sum()",
    # a view taken before a write reads the new values with their graph
    "earlier_view_reads": "x = w * 1; v = x[0:2]; x[1] = w[2] * 5; loss = (v * tensor([10.0, 100.0])).sum()",
    "earlier_view_of_constant": "x = zeros(3); v = x[1:]; x[1] = w[0] * 2; loss = (v * v).sum()",
    "earlier_view_of_view": "x = zeros(2, 3); v = x[1][1:]; x[1, 2] = w[1]; x[:, 1] += w[:2]; loss = (v ** 3).sum()",
    # a view read before a write elsewhere (a loop filling a buffer): its graph stays as it was
    "fill_a_buffer": "out = zeros(4); out[0] = w[0]\nfor t in range(1, 4): out[t] = out[t - 1].tanh() * w[t - 1]\n"
                     "loss = (out * out).sum()",
    # advanced indices (copies, also where NumPy gives the copy a .base of its own)
    "columns_iadd": "x = w.reshape(1, 3) * tensor([[1.0], [2.0]]); x[:, [0, 2]] += w[1]; loss = (x ** 2).sum()",
    "mask_on_last_axis": "x = (w * 2).reshape(1, 3) * 1; x[:, [True, False, True]] *= w[0]; loss = (x ** 2).sum()",
    "write_into_advanced_copy": "x = zeros(2, 3); c = x[:, [0, 1]]; c[0] = w[:2]; loss = (c * c).sum() + x.sum()",
    # a view of a view whose middle tensor is gone
    "view_of_gone_view": "x = zeros(4); v = x[0:3][1:2]; v[0] = w[1]; loss = (x * x).sum() + (v * 2).sum()",
    # an integer for every axis: a 0-d view, as PyTorch's
    "integer_index_view": "x = zeros(4); v = x[1]; v += w[0]; m = zeros(2, 2); s = m[1, 0]; s *= 0.0; s += w[2]\n"
                          "loss = (x * x).sum() + (m * v).sum() + v * 3",
    "view_of_gone_base": "v = (w * 1)[1]; v += w[0]; loss = v * v",
    # a reshape, a transpose, an index of a reshape and a broadcast taken before the write follow it too
    "earlier_reshape_and_transpose": "x = w * 1; r = x.reshape(3, 1); t = x.reshape(1, 3).T\n"
                                     "c = x.reshape(3, 1)[1]; x[1] = w[0] * 5; x[2:] += w[1] * w[2]\n"
                                     "loss = (r * r).sum() + (t * tensor([[1.0], [2.0], [3.0]])).sum()\n"
                                     "loss = loss + (c ** 3).sum()",
    "earlier_broadcast_of_constant": "x = zeros(1); e = x.expand(3); x[0] = w[2] * 3\n"
                                     "loss = (e * tensor([1.0, 2.0, 3.0])).sum()",
}


def _run(code: str, lib, w):
    env = {"w": w, "zeros": lambda *s: lib.zeros(s, dtype=lib.float64),
           "tensor": lambda d: lib.tensor(d, dtype=lib.float64)}
    exec(code, env)  # the same statements on both libraries
    return env


@pytest.mark.oracle
@pytest.mark.parametrize("name", PROGRAMS)
def test_writes_through_views_are_recorded_as_pytorchs(torch, name):
    values = np.array([1.5, -2.0, 0.5])
    w = dg.tensor(values, requires_grad=True)
    mine = _run(PROGRAMS[name], dg, w)
    tw = torch.tensor(values, requires_grad=True)
    theirs = _run(PROGRAMS[name], torch, tw)
    assert_program_matches_torch(torch, mine, theirs, ("x", "v", "b", "out", "c", "m", "s"), w, tw)


@pytest.mark.oracle
def test_an_integer_index_of_a_parameter_is_a_view_of_it(torch):
    """p[0] is a view: += on it is refused while recording and, inside no_grad, changes p."""
    for lib in (dg, torch):
        p = lib.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf"):
            v = p[0]
            v += 1.0
        with lib.no_grad():
            v = p[0]
            v += 1.0
        assert p.tolist() == [2.0, 2.0]


def test_a_view_of_a_gone_tensor_refuses_a_write_another_live_view_would_not_see():
    w = dg.tensor([1.0, 2.0], requires_grad=True)
    base = dg.zeros(4)
    v, u = base[0:2], base[1:3]
    del base
    with pytest.raises(RuntimeError, match="another view of its memory"):
        v[1] = w[0]
    v, u = dg.zeros(4)[0:2], None
    v[1] = w[0]  # no other view of the memory: v records the write itself
    (v * v).sum().backward()
    assert w.grad.tolist() == [2.0, 0.0] and u is None


@pytest.mark.oracle
def test_a_0d_output_saved_for_backward_and_changed_in_place_is_refused(torch):
    for lib in (dg, torch):
        p = lib.tensor(0.5, requires_grad=True)
        t = p.exp()
        with lib.no_grad():
            t *= 3.0
        with pytest.raises(RuntimeError, match="modified by an in"):
            t.backward()


def _running_sum(captured: bool) -> list:
    """A metric summed in place from the loss (a graph value) in a captured CPU step, and reset
    from outside between calls."""
    x = dg.tensor(np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32))
    weights = dg.tensor(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    opt = optim.SGD([weights], lr=0.05, capturable=True)
    acc = dg.zeros((), dtype="float64")
    buf = dg.zeros(4, dtype="float32")

    def step(xb):
        loss = ((xb @ weights).tanh() ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        acc.__iadd__(loss)  # acc += loss, loss requiring grad
        view = buf[1:3]
        view += loss
        return loss

    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    out = []
    for k in range(8):
        with dg.no_grad():
            acc[...] = float(k // 4)
            buf[...] = float(k // 4)
        run(x)
        out.append((acc.item(), buf.tolist()))
    assert run.replays == (6 if captured else 0)
    return out


def test_a_captured_step_adding_a_graph_value_in_place_replays_as_the_eager_step():
    eager = _running_sum(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _running_sum(True) == eager
