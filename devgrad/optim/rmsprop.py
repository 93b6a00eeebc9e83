"""RMSprop and Adagrad: per-coordinate step sizes from squared-gradient statistics."""

from __future__ import annotations

from devgrad.optim.optimizer import Optimizer, scratch


class RMSprop(Optimizer):
    """Divide the gradient by a running RMS of recent gradients (Hinton), as PyTorch does."""

    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, maximize: bool = False,
                 capturable: bool = False):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                  "momentum": momentum, "centered": centered, "maximize": maximize},
                         capturable=capturable)

    def validate(self, group):
        super().validate(group)
        if not 0.0 <= group["alpha"] <= 1.0:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {group['alpha']}")
        if group["momentum"] < 0:
            raise ValueError(f"RMSprop: momentum must be >= 0, got {group['momentum']}")

    def update(self, param, grad, group, state, device, lr):
        self.update_group([(param, grad, state)], group, device, lr)

    def update_group(self, entries, group, device, lr):
        """Every parameter of the group in one fused update (one launch per dtype on a GPU)."""
        xp = device.xp
        momentum, centered = group["momentum"], group["centered"]
        for param, _, state in entries:
            if "square_avg" not in state:
                state["square_avg"] = xp.zeros_like(param)
                if momentum > 0:
                    state["momentum_buffer"] = xp.zeros_like(param)
                if centered:
                    state["grad_avg"] = xp.zeros_like(param)
        self._step_counts([state for _, _, state in entries], device)
        count = 2 if group["weight_decay"] or group["maximize"] else 1
        items = [_with_scratch((param, grad, state["square_avg"], state.get("momentum_buffer"), state.get("grad_avg")),
                               state, param, device, count) for param, grad, state in entries]
        device.kernels.rmsprop_update_many(items, lr, group["alpha"], group["eps"], group["weight_decay"], momentum,
                                           centered, group["maximize"])


class Adagrad(Optimizer):
    """Step sizes shrink with the sum of squared gradients seen so far (Duchi et al.)."""

    def __init__(self, params, lr: float = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, maximize: bool = False,
                 capturable: bool = False):
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value, "eps": eps,
                                  "maximize": maximize}, capturable=capturable)

    def update(self, param, grad, group, state, device, lr):
        self.update_group([(param, grad, state)], group, device, lr)

    def update_group(self, entries, group, device, lr):
        """Every parameter of the group in one fused update (one launch per dtype on a GPU)."""
        for param, _, state in entries:
            if "sum" not in state:
                state["sum"] = device.kernels.full(param.shape, group["initial_accumulator_value"], param.dtype)
        steps = self._step_counts([state for _, _, state in entries], device)
        count = 2 if group["weight_decay"] or group["maximize"] else 1
        items = [_with_scratch((param, grad, state["sum"], step), state, param, device, count)
                 for (param, grad, state), step in zip(entries, steps)]
        device.kernels.adagrad_update_many(items, lr, group["lr_decay"], group["weight_decay"], group["eps"],
                                           group["maximize"])


def _with_scratch(item: tuple, state: dict, param, device, count: int) -> tuple:
    """``item`` with the parameter's scratch buffer(s) appended where the device's kernels want them
    (the CPU's); a GPU's fused kernels take the item as it is."""
    buf = scratch(state, param, device, count)
    return item if buf is None else (*item, buf)
