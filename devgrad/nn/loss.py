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
    """``nn.BCEWithLogitsLoss(weight=None, reduction='mean', pos_weight=None)``, as PyTorch's
    (``pos_weight`` a number or one value per class)."""

    fn = staticmethod(F.binary_cross_entropy_with_logits)

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction, **_given(weight=weight, pos_weight=pos_weight))


class BCELoss(_Loss):
    """``nn.BCELoss(weight=None, reduction='mean')``: binary cross-entropy of probabilities."""

    fn = staticmethod(F.binary_cross_entropy)

    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction, **_given(weight=weight))


class LogisticLoss(_Loss):
    fn = staticmethod(F.logistic_loss)


class CrossEntropyLoss(_Loss):
    """``nn.CrossEntropyLoss(weight=None, ignore_index=-100, reduction='mean', label_smoothing=0.0)``."""

    fn = staticmethod(F.cross_entropy)

    def __init__(self, weight=None, ignore_index: int | None = None, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(reduction, **_given(weight=weight, ignore_index=ignore_index),
                         **({"label_smoothing": label_smoothing} if label_smoothing else {}))


class NLLLoss(_Loss):
    """``nn.NLLLoss(weight=None, ignore_index=-100, reduction='mean')``."""

    fn = staticmethod(F.nll_loss)

    def __init__(self, weight=None, ignore_index: int | None = None, reduction: str = "mean"):
        super().__init__(reduction, **_given(weight=weight, ignore_index=ignore_index))


def _given(**options) -> dict:
    """The options that were given (not None), so the functional defaults apply to the rest."""
    return {k: v for k, v in options.items() if v is not None}


class HingeLoss(_Loss):
    fn = staticmethod(F.hinge_loss)
