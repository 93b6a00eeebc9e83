"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

import numpy as np

from devgrad.optim import _sgd_flat
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

    def _step_flat(self, group: dict) -> bool:
        layout = self._flat_layouts.get(id(group))
        return (isinstance(layout, _sgd_flat.Layout) and not self.capturable
                and type(self).update_group is SGD.update_group and layout.step(group["params"], self.state, group))

    def update_group(self, entries, group, device, lr):
        if device.updates_need_scratch and self._update_flat(entries, group, lr):
            return  # NumPy: a group of small parameters in one flat update
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

    def _update_flat(self, entries: list, group: dict, lr) -> bool:
        """Update the group through its flat layout (made at a step where every parameter of the
        group has a gradient, and with momentum, none has a buffer yet); False when it has none
        or this step does not fit it (nothing done)."""
        layout = self._flat_layouts.get(id(group))
        if layout is None:
            if len(entries) != len(group["params"]) or any(type(p) is not np.ndarray for p, _, _ in entries):
                return False  # decided at a full eager step (a recording for replay traces views)
            momentum = bool(group["momentum"])
            if momentum and any("momentum_buffer" in state for _, _, state in entries):
                self._flat_layouts[id(group)] = False  # buffers made one by one: they stay so
                return False
            layout = self._flat_layouts[id(group)] = _sgd_flat.layout(
                [p for p, _, _ in entries], [g for _, g, _ in entries], [state for _, _, state in entries],
                momentum) or False
        return isinstance(layout, _sgd_flat.Layout) and layout.update(entries, lr, group)

    def _loaded_layout(self, group: dict):
        if not group["momentum"]:
            return None  # no buffers to adopt: the first full step makes the layout
        datas = [p.data for p in group["params"]]
        return _sgd_flat.layout(datas, datas, [self.state[p] for p in group["params"]], True) or False
