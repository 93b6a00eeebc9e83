"""Learning-rate schedules (closed forms, PyTorch's semantics; ``dg.optim.lr_scheduler`` as in
PyTorch): call ``step()`` once per epoch."""

from __future__ import annotations

import math

from devgrad.backend import is_capturing, refuse_while_capturing
from devgrad.optim.adaptive_schedules import OneCycleLR, ReduceLROnPlateau

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LinearLR", "OneCycleLR", "ReduceLROnPlateau",
           "StepLR", "WarmupScheduler"]


class LRScheduler:
    """Sets each group's lr to ``lr_at(initial_lr, epoch)``; epoch 0 is applied at construction."""

    def __init__(self, optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> None:
        if is_capturing():
            refuse_while_capturing(f"the schedule {type(self).__name__} stepped",
                                   "replays run no Python, so the rate would stop changing. Call the schedule's "
                                   "step() outside the captured function (a capturable optimizer passes the new "
                                   "rate on to the graph)")
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base, self.last_epoch)

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = [float(b) for b in state["base_lrs"]]
        self.last_epoch = int(state["last_epoch"]) - 1
        self.step()


class StepLR(LRScheduler):
    """lr = base · gamma^(epoch // step_size)."""

    def __init__(self, optimizer, step_size: int = 30, gamma: float = 0.1, last_epoch: int = -1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """lr = base · gamma^epoch."""

    def __init__(self, optimizer, gamma: float = 0.95, last_epoch: int = -1):
        if gamma <= 0:
            raise ValueError(f"ExponentialLR: gamma must be > 0, got {gamma}")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base − eta_min)·(1 + cos(π·epoch / t_max)) / 2.

    ``t_max`` is PyTorch's ``T_max`` (accepted too). In a spec, leaving it out means the run's
    length (its epochs after warm-up).
    """

    def __init__(self, optimizer, t_max: int | None = None, eta_min: float = 0.0, last_epoch: int = -1, *,
                 T_max: int | None = None):
        if T_max is not None:
            if t_max is not None and t_max != T_max:
                raise ValueError(f"CosineAnnealingLR: t_max={t_max} and T_max={T_max} name the same value; give one")
            t_max = T_max
        if t_max is None or t_max < 1:
            raise ValueError(f"CosineAnnealingLR: t_max (the period in epochs) must be >= 1, got {t_max}")
        if eta_min < 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be >= 0, got {eta_min}")
        self.t_max, self.eta_min = t_max, eta_min
        super().__init__(optimizer, last_epoch)

    @property
    def T_max(self) -> int:  # noqa: N802 - PyTorch's name
        return self.t_max

    def lr_at(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.t_max)) / 2


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of a factor from start_factor to end_factor over total_iters."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1]")
        if total_iters is None or total_iters < 0:
            raise ValueError(f"LinearLR: total_iters must be >= 0, got {total_iters}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        progress = min(epoch, self.total_iters) / self.total_iters if self.total_iters else 1.0
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class WarmupScheduler(LRScheduler):
    """Linear warm-up for ``warmup`` epochs, then ``after`` (another scheduler's shape) or constant.

    During warm-up lr = base·(start_factor + (1 − start_factor)·epoch/warmup); afterwards
    lr = after.lr_at(base, epoch − warmup).
    """

    def __init__(self, optimizer, warmup: int, after: LRScheduler | None = None, start_factor: float = 0.1,
                 last_epoch: int = -1):
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.warmup, self.after, self.start_factor = warmup, after, start_factor
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        if epoch < self.warmup:
            return base_lr * (self.start_factor + (1 - self.start_factor) * epoch / self.warmup)
        if self.after is None:
            return base_lr
        return self.after.lr_at(base_lr, epoch - self.warmup)
