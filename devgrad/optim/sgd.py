"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from devgrad.optim.optimizer import Optimizer, scratch


class SGD(Optimizer):
    """p ← p − lr·d, where d is the gradient (plus weight_decay·p), optionally through momentum.

    Matches PyTorch: buf ← momentum·buf + (1 − dampening)·g (buf starts as g); Nesterov
    uses g + momentum·buf.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, maximize: bool = False,
                 capturable: bool = False):
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening, "nesterov": nesterov,
                                  "weight_decay": weight_decay, "maximize": maximize}, capturable=capturable)

    def validate(self, group):
        super().validate(group)
        if group["momentum"] < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")

    def update(self, param, grad, group, state, device, lr):
        self.update_group([(param, grad, state)], group, device, lr)

    def update_group(self, entries, group, device, lr):
        momentum = group["momentum"]
        # a second scratch buffer where the update keeps the decayed or negated gradient beside another temporary
        count = 2 if group["nesterov"] and (group["weight_decay"] or group["maximize"]) else 1
        items = []
        for param, grad, state in entries:
            buf = None
            first = False
            if momentum:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = device.xp.empty_like(param)
                    first = True  # the buffer starts as the gradient
            # the scratch buffer of the step before, when it still fits (scratch(), inlined: every step)
            tmp = state.get("_scratch") if count == 1 else None
            if tmp is None or tmp.shape != param.shape or tmp.dtype != param.dtype or type(tmp) is not type(param):
                tmp = scratch(state, param, device, count)
            items.append((param, grad, buf, tmp, first))
        device.kernels.sgd_update_many(items, lr, momentum, group["dampening"], group["weight_decay"],
                                       group["nesterov"], group["maximize"])
