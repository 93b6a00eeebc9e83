"""RMSprop and Adagrad: per-coordinate step sizes from squared-gradient statistics."""

from __future__ import annotations

from devgrad.optim.optimizer import Optimizer


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
        xp = device.xp
        alpha, eps, momentum = group["alpha"], group["eps"], group["momentum"]
        g = -grad if group["maximize"] else grad
        if group["weight_decay"]:
            g = g + group["weight_decay"] * param
        if "square_avg" not in state:
            state["square_avg"] = xp.zeros_like(param)
            if momentum > 0:
                state["momentum_buffer"] = xp.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(param)
        self._step_count(state, device)
        sq = state["square_avg"]
        sq *= alpha
        sq += (1.0 - alpha) * (g * g)
        if group["centered"]:
            ga = state["grad_avg"]
            ga *= alpha
            ga += (1.0 - alpha) * g
            avg = xp.sqrt(sq - ga * ga)
        else:
            avg = xp.sqrt(sq)
        avg += eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / avg
            param -= lr * buf
        else:
            param -= lr * (g / avg)


class Adagrad(Optimizer):
    """Step sizes shrink with the sum of squared gradients seen so far (Duchi et al.)."""

    def __init__(self, params, lr: float = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, maximize: bool = False,
                 capturable: bool = False):
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value, "eps": eps,
                                  "maximize": maximize}, capturable=capturable)

    def update(self, param, grad, group, state, device, lr):
        xp = device.xp
        g = -grad if group["maximize"] else grad
        if "sum" not in state:
            state["sum"] = xp.full_like(param, group["initial_accumulator_value"])
        step = self._step_count(state, device)
        if group["weight_decay"]:
            g = g + group["weight_decay"] * param
        clr = lr / (1.0 + (step - 1) * group["lr_decay"])
        total = state["sum"]
        total += g * g
        std = xp.sqrt(total)
        std += group["eps"]
        param -= clr * (g / std)
