"""Loss modules: thin wrappers over the functional losses, for ``loss_fn = nn.CrossEntropyLoss()``."""

from __future__ import annotations

from collections.abc import Callable

from devgrad.core import Tensor
from devgrad.nn import functional as F
from devgrad.nn.module import Module


class _Loss(Module):
    fn: Callable[..., Tensor]  # each loss class sets it to its functional form

    def __init__(self, reduction: str = "mean", **options):
        super().__init__()
        if reduction not in F.REDUCTIONS:
            raise ValueError(f"reduction must be one of {F.REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.options = options

    def forward(self, pred, target):
        return type(self).fn(pred, target, reduction=self.reduction, **self.options)

    def extra_repr(self) -> str:
        return ", ".join([f"reduction={self.reduction!r}"] + [f"{k}={v!r}" for k, v in self.options.items()])


class MSELoss(_Loss):
    fn = staticmethod(F.mse_loss)


class L1Loss(_Loss):
    fn = staticmethod(F.l1_loss)


class HuberLoss(_Loss):
    """``nn.HuberLoss(delta=1.0)``, as PyTorch's."""

    fn = staticmethod(F.huber_loss)

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction, delta=delta)


class BCEWithLogitsLoss(_Loss):
    fn = staticmethod(F.binary_cross_entropy_with_logits)


class LogisticLoss(_Loss):
    fn = staticmethod(F.logistic_loss)


class CrossEntropyLoss(_Loss):
    fn = staticmethod(F.cross_entropy)


class NLLLoss(_Loss):
    fn = staticmethod(F.nll_loss)


class HingeLoss(_Loss):
    fn = staticmethod(F.hinge_loss)
