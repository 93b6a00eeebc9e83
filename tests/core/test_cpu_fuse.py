"""The passes that make a recorded CPU plan cheaper to replay (``devgrad.cpu_fuse``) keep its bits.

A sigmoid MLP trained with binary cross-entropy and plain SGD (the bench's tiny step) runs
eagerly and through ``CapturedStep`` from the same start; weights, gradients and losses must
agree byte for byte, and the plan must show each pass's work.
"""

from __future__ import annotations

import itertools

import numpy as np

import devgrad as dg
from devgrad import cpu_fuse, cpu_plan, nn, optim
from devgrad.capture import CapturedStep
from devgrad.nn import functional as F

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


def _train(captured: bool, starts=(0, 32, 0, 32, 0, 32)):
    model, opt, step = _binary_step()
    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    losses = [run(dg.tensor(X[s:s + 32]), dg.tensor(Y[s:s + 32])).numpy().tobytes() for s in starts]
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
