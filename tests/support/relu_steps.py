"""A captured CPU step through a ReLU whose upstream gradient holds inf, -inf, NaN and -0.0."""

from __future__ import annotations

import numpy as np

import devgrad as dg
from devgrad import nn, optim
from devgrad.capture import CapturedStep
from devgrad.core import Tensor
from devgrad.nn import functional as F


def relu_gradient_run(values: np.ndarray, upstream: np.ndarray, captured: bool, act=F.relu):
    """Five steps of the loss sum(act(weights * x) * ``upstream``), ``act`` the ReLU or another
    op of its values (``dg.maximum(t, 0.0)``), the weights starting at
    ``values``, x = 1 and -1 in turn, through a ``CapturedStep`` (``captured``) or eagerly: the
    weights' gradient after each step (bytes), and the CapturedStep. The weights stay as they
    are (their gradient is zeroed before the update), so that every step's masks are the first's."""
    weights = nn.Parameter(dg.tensor(values))
    scale = dg.tensor(upstream)
    opt = optim.SGD([weights], lr=0.1, capturable=True)

    def step(xb):
        loss = (act(weights * xb) * scale).sum()
        opt.zero_grad()
        loss.backward()
        grad = weights.grad.data.copy()
        weights.grad.data[...] = 0
        opt.step()
        return loss, Tensor._make(grad, weights.device)

    run = CapturedStep(step, "cpu", optimizer=opt, enabled=captured)
    grads = [run(dg.tensor(np.float32(s)))[1].numpy().tobytes() for s in (1, -1, 1, -1, 1)]
    return grads, run
