"""Two schedules of PyTorch's with their own stepping: ReduceLROnPlateau (``step(metric)`` once per
epoch: the rate falls when a monitored value stops improving) and OneCycleLR (``step()`` once per
batch: warm up to ``max_lr``, anneal to far below the start, momentum cycling the other way).
Defaults and formulas are PyTorch's."""

from __future__ import annotations

import math

from devgrad.backend import is_capturing, refuse_while_capturing


def _refuse_capture(name: str) -> None:
    if is_capturing():
        refuse_while_capturing(f"the schedule {name} stepped",
                               "replays run no Python, so the rate would stop changing. Call the schedule's step() "
                               "outside the captured function")


def _per_group(value, groups: list, name: str) -> list:
    if isinstance(value, list | tuple):
        if len(value) != len(groups):
            raise ValueError(f"{name}: {len(value)} values for {len(groups)} parameter groups; give one or one per "
                             "group")
        return [float(v) for v in value]
    return [float(value)] * len(groups)


class ReduceLROnPlateau:
    """Multiply each group's lr by ``factor`` (not below ``min_lr``) once the monitored value has
    not improved for more than ``patience`` epochs, then wait ``cooldown`` epochs. Improving
    means below best·(1 − threshold) in mode 'min' with threshold_mode 'rel' (best − threshold
    with 'abs'; above, in mode 'max'). A change smaller than ``eps`` is not made."""

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0.0,
                 eps: float = 1e-8):
        if factor >= 1.0 or factor < 0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if patience < 0 or cooldown < 0:
            raise ValueError(f"ReduceLROnPlateau: patience and cooldown must be >= 0, got {patience}, {cooldown}")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience, self.threshold = mode, float(factor), int(patience), float(threshold)
        self.threshold_mode, self.cooldown, self.eps = threshold_mode, int(cooldown), float(eps)
        self.min_lrs = _per_group(min_lr, optimizer.param_groups, "ReduceLROnPlateau min_lr")
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def is_better(self, value: float, best: float) -> bool:
        """Does ``value`` improve on ``best`` by more than the threshold?"""
        if self.mode == "min":
            return value < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return value > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metrics) -> None:
        """Record this epoch's monitored value (a number or a one-element tensor)."""
        _refuse_capture("ReduceLROnPlateau")
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    _STATE = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "min_lrs", "_last_lr")

    def state_dict(self) -> dict:
        return {key: getattr(self, key) for key in self._STATE}

    def load_state_dict(self, state: dict) -> None:
        for key in self._STATE:
            if key in state:
                setattr(self, key, state[key])


class OneCycleLR:
    """The 1cycle policy: lr rises from max_lr/div_factor to ``max_lr`` over the first
    ``pct_start`` of ``total_steps`` (or epochs × steps_per_epoch), then anneals to
    initial_lr/final_div_factor ('cos' or 'linear'); with ``three_phase`` it first returns to the
    initial lr. Momentum (SGD's, or Adam's beta1) cycles between max_momentum and
    base_momentum the opposite way. Call ``step()`` after each batch."""

    def __init__(self, optimizer, max_lr, total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps <= 0 or not 0 <= pct_start <= 1 or anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: total_steps must be > 0 (got {total_steps}), pct_start in [0, 1] (got "
                             f"{pct_start}), anneal_strategy 'cos' or 'linear' (got {anneal_strategy!r})")
        self.optimizer, self.total_steps, self.anneal_strategy = optimizer, int(total_steps), anneal_strategy
        self.cycle_momentum = cycle_momentum
        self.phases = self._phases(float(pct_start), three_phase)
        groups = optimizer.param_groups
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum and not self.use_beta1 and "momentum" not in optimizer.defaults:
            raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas; pass "
                             "cycle_momentum=False")
        if last_epoch == -1:
            for group, top in zip(groups, _per_group(max_lr, groups, "OneCycleLR max_lr")):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
            if cycle_momentum:
                for group, low, high in zip(groups, _per_group(base_momentum, groups, "OneCycleLR base_momentum"),
                                            _per_group(max_momentum, groups, "OneCycleLR max_momentum")):
                    self._set_momentum(group, high)
                    group["max_momentum"], group["base_momentum"] = high, low
        self.last_epoch = last_epoch
        self.step()

    def _phases(self, pct: float, three_phase: bool) -> list[tuple]:
        """(end step, start lr key, end lr key, start momentum key, end momentum key) per phase."""
        n = self.total_steps
        if three_phase:
            return [(pct * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    (2 * pct * n - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                    (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        return [(pct * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def step(self) -> None:
        """Advance one batch and set each group's lr (and momentum) for the next one."""
        _refuse_capture("OneCycleLR")
        self.last_epoch += 1
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, but total_steps is {self.total_steps}; make "
                             "total_steps (or epochs × steps_per_epoch) cover every batch")
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
                if step <= end or i == len(self.phases) - 1:
                    pct = (step - start) / (end - start)
                    group["lr"] = self._anneal(group[lr0], group[lr1], pct)
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m0], group[m1], pct))
                    break
                start = end

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "total_steps": self.total_steps}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = int(state["last_epoch"]) - 1
        self.step()
