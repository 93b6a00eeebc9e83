"""Adam (with optional AMSGrad) and AdamW (decoupled weight decay)."""

from __future__ import annotations

from devgrad.optim import _adam_flat
from devgrad.optim.optimizer import Optimizer, scratch


class Adam(Optimizer):
    """Adam: bias-corrected moving averages of the gradient and its square (Kingma & Ba).

    ``weight_decay`` adds weight_decay·p to the gradient (L2), as PyTorch's Adam does;
    use AdamW for decoupled decay.
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False,
                 capturable: bool = False):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize}, capturable=capturable)

    def validate(self, group):
        super().validate(group)
        b1, b2 = group["betas"]
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {group['betas']}")
        if group["eps"] < 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {group['eps']}")

    def update(self, param, grad, group, state, device, lr):
        self.update_group([(param, grad, state)], group, device, lr)

    def update_group(self, entries, group, device, lr):
        if device.updates_need_scratch:  # NumPy: the group's small parameters in one flat update
            entries = self._update_flat(entries, group, lr)
            if not entries:
                return
        xp = device.xp
        for param, _, state in entries:
            if "exp_avg" not in state:
                state["exp_avg"] = xp.zeros_like(param)
                state["exp_avg_sq"] = xp.zeros_like(param)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = xp.zeros_like(param)
        steps = self._step_counts([state for _, _, state in entries], device)
        b1, b2 = group["betas"]
        count = 2 if group["maximize"] or (group["weight_decay"] and not self.decoupled) else 1
        items = [(param, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                  scratch(state, param, device, count), step) for (param, grad, state), step in zip(entries, steps)]
        device.kernels.adam_update_many(items, lr, b1, b2, group["eps"], group["weight_decay"], self.decoupled,
                                        group["maximize"])

    def _update_flat(self, entries: list, group: dict, lr) -> list:
        """Update the parameters of the group's flat layout (made with their state: every parameter
        of the group has a gradient and none has state yet); returns the entries left."""
        layout = self._flat_layouts.get(id(group))
        if layout is None:
            if any("exp_avg" in state for _, _, state in entries):
                self._flat_layouts[id(group)] = False  # state made one by one: it stays so
                return entries
            if len(entries) != len(group["params"]):
                return entries
            layout = self._flat_layouts[id(group)] = _adam_flat.layout(
                [p for p, _, _ in entries], [state for _, _, state in entries], group["amsgrad"],
                self.capturable) or False
        if not isinstance(layout, _adam_flat.Layout) or not layout.matches(entries):
            return entries
        return layout.update(entries, lr, group, self.decoupled)

    def _loaded_layout(self, group: dict):
        params = group["params"]
        return _adam_flat.layout([p.data for p in params], [self.state[p] for p in params], group["amsgrad"],
                                 self.capturable) or False


class AdamW(Adam):
    """Adam with decoupled weight decay: p ← p·(1 − lr·weight_decay) before the Adam step."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, amsgrad: bool = False, maximize: bool = False,
                 capturable: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, capturable=capturable)
