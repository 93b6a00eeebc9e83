"""Adam (with optional AMSGrad) and AdamW (decoupled weight decay)."""

from __future__ import annotations

import math

from devgrad.optim.optimizer import Optimizer, scratch


class Adam(Optimizer):
    """Adam: bias-corrected moving averages of the gradient and its square (Kingma & Ba).

    ``weight_decay`` adds weight_decay·p to the gradient (L2), as PyTorch's Adam does;
    use AdamW for decoupled decay.
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize})

    def validate(self, group):
        super().validate(group)
        b1, b2 = group["betas"]
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {group['betas']}")
        if group["eps"] < 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {group['eps']}")

    def update(self, param, grad, group, state, xp):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        if wd:
            if self.decoupled:
                param *= 1.0 - lr * wd
            else:
                g = g + wd * param
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        tmp = scratch(state, param, xp)  # every temporary goes through one reused buffer
        m *= b1
        xp.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"]
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        bias1 = 1.0 - b1**step
        bias2_sqrt = math.sqrt(1.0 - b2**step)
        xp.sqrt(v, out=tmp)
        tmp /= bias2_sqrt
        tmp += eps
        xp.divide(m, tmp, out=tmp)
        tmp *= lr / bias1
        param -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay: p ← p·(1 − lr·weight_decay) before the Adam step."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)
