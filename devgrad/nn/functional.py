"""Losses and layer functions.

Each loss is one fused node (devgrad.nn.loss_ops) where its inputs allow: the classification
losses compute the loss from logits with the log-sum-exp / softplus trick and their backward is
the familiar ``softmax(z) - onehot(y)`` / ``sigmoid(z) - y``. That is faster than composing
log_softmax and indexing, and exact for any logit size (no log(0), no overflow).
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np

from devgrad.backend import DeviceError
from devgrad.core import Function, Tensor
from devgrad.nn.loss_ops import (
    NLL, AbsoluteError, BCEWithLogits, CrossEntropy, Hinge, HuberError, Logistic, SquaredError,
)
from devgrad.ops import (
    leaky_relu, linear, log_sigmoid, log_softmax, relu, sigmoid, softmax, tanh, where,
)
from devgrad.ops.elementwise import clip
from devgrad.ops.activation import softplus as _softplus  # exact, for the losses' formulas
from devgrad.ops.activation_torch import elu, gelu, hardtanh, mish, silu
from devgrad.ops.activation_torch import softplus_beta as softplus
from devgrad.nn import class_losses
from devgrad.nn.class_losses import binary_cross_entropy
from devgrad.nn.embedding import embedding, one_hot
from devgrad.nn.norm import batch_norm, layer_norm
from devgrad.random import default_generator

REDUCTIONS = ("mean", "sum", "none")

__all__ = [
    "BINARY_LOSSES",
    "LOSSES",
    "REGRESSION_LOSSES",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "gelu",
    "hardtanh",
    "hinge_loss",
    "huber_loss",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "logistic_loss",
    "mish",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
]


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _as_target(target, like: Tensor, name: str, dtype=None) -> Tensor:
    if not isinstance(target, Tensor):
        arr = np.asarray(target)
        if not like.device.is_host and isinstance(target, np.ndarray):
            raise DeviceError(f"{name}: target is a NumPy array on the host but the input is on {like.device}; "
                              f"pass dg.tensor(target, device='{like.device}')")
        target = Tensor._make(like.device.put(arr.astype(dtype or like.dtype, copy=False)), like.device)
    elif target.device is not like.device:
        raise DeviceError(f"{name}: input is on {like.device} but target on {target.device}")
    return target


def _same_shape(pred: Tensor, target: Tensor, name: str) -> None:
    if pred.shape != target.shape:
        hint = ""
        if pred.ndim == target.ndim + 1 and pred.shape[-1] == 1:
            hint = " (squeeze the trailing 1: pred.reshape(-1), or give targets shape (N, 1))"
        raise ValueError(f"{name}: input shape {pred.shape} and target shape {target.shape} differ{hint}; "
                         "devgrad does not broadcast losses, as that silently computes the wrong thing")


_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _pair_loss(cls, name: str, pred: Tensor, target, reduction: str, params: tuple, formula) -> Tensor:
    """Loss ``cls`` of pred and target as one fused node (float32/float64, one dtype: what the
    kernels take); otherwise ``formula(pred, target)`` op by op, which keeps NumPy's promotion."""
    target = _as_target(target, pred, name)
    _same_shape(pred, target, name)
    dtype = pred.data.dtype
    if target.data.dtype == dtype and dtype in _FUSED_DTYPES:
        return cls.apply(pred, target, scale=_reduction_scale(reduction, pred.data.size), params=params)
    return _reduce(formula(pred, target), reduction)


def mse_loss(pred: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error (pred - target)²."""
    return _pair_loss(SquaredError, "mse_loss", pred, target, reduction, (), lambda p, t: (p - t) * (p - t))


def l1_loss(pred: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error |pred - target| (the ``mae`` of a regression spec)."""
    return _pair_loss(AbsoluteError, "l1_loss", pred, target, reduction, (), lambda p, t: (p - t).abs())


def huber_loss(pred: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """Huber loss: ½d² where |d| < delta, else delta·(|d| − ½delta), with d = pred − target (as
    PyTorch's): quadratic near the target, linear (robust to outliers) far from it."""
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")

    def formula(p, t):
        d = p - t
        a = d.abs()
        return where(a >= delta, (a - 0.5 * delta) * delta, d * d * 0.5)  # NaN takes the square: NaN gradient
    return _pair_loss(HuberError, "huber_loss", pred, target, reduction, (float(delta),), formula)


def _reduction_scale(reduction: str, count: int):
    """How a fused loss reduces its per-element values: mean → 1/count, sum → 1, none → None."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        return None
    return 1.0 / count if reduction == "mean" and count else 1.0


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean",
                                     pos_weight=None, *, weight=None) -> Tensor:
    """Binary cross-entropy of labels 0/1 (or probabilities) given logits, stable for any |logit|.

    ``pos_weight`` scales the loss of positive examples (for imbalanced data): a number, or one
    value per class (a tensor broadcast along the last axis); ``weight`` scales each element.
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    if weight is not None or (pos_weight is not None and np.ndim(getattr(pos_weight, "data", pos_weight)) > 0):
        return class_losses.weighted_bce_with_logits(logits, target, weight, pos_weight, reduction)
    w = None if pos_weight is None else float(pos_weight)

    def formula(z, y):
        if w is None:
            return _softplus(z) - z * y
        return _softplus(-z) * y * w + _softplus(z) * (1.0 - y)  # w·y·softplus(-z) + (1-y)·softplus(z)
    return _pair_loss(BCEWithLogits, "binary_cross_entropy_with_logits", logits, target, reduction,
                      () if w is None else (w,), formula)


def logistic_loss(scores: Tensor, target, reduction: str = "mean") -> Tensor:
    """The lecture's logistic loss log(1 + exp(-y·d)) for labels y ∈ {-1, +1}."""
    return _pair_loss(Logistic, "logistic_loss", scores, target, reduction, (),
                      lambda d, y: _softplus(-(y * d)))


def hinge_loss(scores: Tensor, target, reduction: str = "mean", margin: float = 1.0) -> Tensor:
    """max(0, margin - y·d) for labels y ∈ {-1, +1} (the linear SVM's loss)."""
    return _pair_loss(Hinge, "hinge_loss", scores, target, reduction, (float(margin),),
                      lambda d, y: clip(margin - y * d, lo=0.0))


def _check_class_labels(logits: Tensor, labels: Tensor, name: str) -> None:
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels must be integer class indices, got dtype {labels.dtype}")
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"{name}: expected logits of shape (N, C) and labels of shape (N,), got "
                         f"{logits.shape} and {labels.shape}")


def _check_label_range(labels: Tensor, n_classes: int, name: str) -> None:
    """Labels outside [0, C) are an error on the CPU. On a GPU the check is skipped: it would
    cost a host sync every step, and the runner already guarantees the range when it loads data."""
    if not labels.device.host_reads_are_free or not labels.size:
        return
    lo, hi = labels.data.min(), labels.data.max()
    # one value read back, whether all are in range (not the smallest and largest label themselves):
    # a step captured on the CPU checks on each replay that what it read is unchanged
    if not ((lo >= 0) & (hi < n_classes)):
        raise ValueError(f"{name}: labels must be in [0, {n_classes - 1}], got values from {int(lo)} to {int(hi)}")


def _plain_labels(logits: Tensor, labels, weight, ignore_index, reduction) -> bool:
    """Can the fused kernel compute it: (N, C) logits, integer labels of shape (N,), no weight,
    no label to ignore (checked on a CPU; on a GPU an ignore_index given by the caller counts)?"""
    if weight is not None or logits.ndim != 2 or isinstance(reduction, Tensor):
        return False
    data = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if data.dtype.kind not in "iub" or data.shape != logits.shape[:1]:
        return False
    if ignore_index is None:
        return not (logits.device.host_reads_are_free and data.size and bool((data == -100).any()))
    return logits.device.host_reads_are_free and not (data.size and bool((data == ignore_index).any()))


def _labels_fit(logits: Tensor, labels, weight, ignore_index, reduction) -> bool:
    """The common case, answered with one reduction: (N, C) logits on the host, no weight, no
    ignore_index given, and a Tensor of N integer labels on their device, all in [0, C): what
    ``_as_target`` and ``_check_class_labels`` check, so a caller skips them. Viewed as unsigned, a
    negative label (-100 included) is huge, so the largest one alone says it; otherwise the full
    checks (``_plain_labels``, ``_check_label_range``) decide, and word any error."""
    if (weight is not None or ignore_index is not None or not isinstance(labels, Tensor)
            or labels.device is not logits.device):
        return False
    data, shape = labels.data, logits.data.shape
    unsigned = _UNSIGNED.get(data.dtype)  # native-order integers only
    if (unsigned is None or len(shape) != 2 or data.shape != shape[:1] or not data.size
            or isinstance(reduction, Tensor) or not logits.device.host_reads_are_free):
        return False
    # the comparison read back, not the largest label: a captured CPU step's replays check that value
    return bool(np.maximum.reduce(data.view(unsigned), axis=None) < shape[1])


# Each native integer dtype's unsigned twin of its width (a label check views labels through it).
_UNSIGNED = {np.dtype(f"{kind}{bits}"): np.dtype(f"uint{bits}")
             for kind in ("int", "uint") for bits in (8, 16, 32, 64)}


def _check_reduction(reduction, name: str) -> None:
    if isinstance(reduction, Tensor):
        raise TypeError(f"{name}: the third argument is the reduction; pass the class weights as weight=")


def cross_entropy(logits: Tensor, labels, reduction: str = "mean", label_smoothing: float = 0.0, *,
                  weight=None, ignore_index: int | None = None) -> Tensor:
    """Softmax cross-entropy from logits (N, C) and integer labels (N,), stable for any logits.

    PyTorch's other forms work too (``nn.class_losses``): class ``weight=``, ``ignore_index=``
    (default -100), probability targets of the logits' shape, (C,) and (N, C, d...) logits.
    """
    _check_reduction(reduction, "cross_entropy")
    if not _labels_fit(logits, labels, weight, ignore_index, reduction):
        if not _plain_labels(logits, labels, weight, ignore_index, reduction):
            return class_losses.cross_entropy(logits, labels, weight, -100 if ignore_index is None else ignore_index,
                                              reduction, label_smoothing)
        labels = _as_target(labels, logits, "cross_entropy", dtype=np.int64)
        _check_class_labels(logits, labels, "cross_entropy")
        _check_label_range(labels, logits.shape[1], "cross_entropy")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1), got {label_smoothing}")
    return CrossEntropy.apply(logits, labels=labels.data, smoothing=float(label_smoothing),
                              scale=_reduction_scale(reduction, logits.shape[0]))


def nll_loss(log_probs: Tensor, labels, reduction: str = "mean", *, weight=None,
             ignore_index: int | None = None) -> Tensor:
    """Negative log-likelihood of integer labels given log-probabilities (N, C); class ``weight=``,
    ``ignore_index=`` (default -100) and (N, C, d...) inputs as PyTorch's (``nn.class_losses``)."""
    _check_reduction(reduction, "nll_loss")
    if not _labels_fit(log_probs, labels, weight, ignore_index, reduction):
        if not _plain_labels(log_probs, labels, weight, ignore_index, reduction):
            return class_losses.nll_loss(log_probs, labels, weight, -100 if ignore_index is None else ignore_index,
                                         reduction)
        labels = _as_target(labels, log_probs, "nll_loss", dtype=np.int64)
        _check_class_labels(log_probs, labels, "nll_loss")
        _check_label_range(labels, log_probs.shape[1], "nll_loss")
    with log_probs.device.activate():
        rows = log_probs.device.xp.arange(log_probs.shape[0])
    return _reduce(NLL.apply(log_probs, index=(rows, labels.data)), reduction)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (inverted dropout).

    ``generator`` is a device generator from ``device.generator(seed)``; without one, a
    fresh one is seeded from devgrad's default host generator.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    if generator is None:
        generator = x.device.generator(int(default_generator().integers(2**63)))
    draws = x.device.uniform(generator, x.shape, x.dtype, half_open=False)  # a draw of 1 counts as 0
    return _Dropout.apply(x, draws, p=p)


class _Dropout(Function):
    """x × mask, the mask (0 or 1/(1−p) per element) made from uniform draws: one kernel forward
    (mask and product) and one backward (g × mask) on a GPU, where CuPy would compile a
    comparison, a cast and a multiply. A second-order graph multiplies Tensors."""

    __slots__ = ("mask",)
    array_backward = True

    def forward(self, x, draws, p):
        self.mask, y = self.device.kernels.dropout_(draws, x, p)
        return y

    def backward(self, g):
        # create_graph: the product op, differentiable in g; first order: the device's kernel
        return self.for_kind(g, operator.mul, self.device.kernels.mul)(g, self.constant(g, self.mask))


# Loss functions by the names specs use (``loss: cross_entropy``). The first three take two
# classes: labels 0/1 for bce, ±1 for logistic and hinge.
LOSSES: dict[str, Callable[..., Tensor]] = {
    "bce": binary_cross_entropy_with_logits, "logistic": logistic_loss, "hinge": hinge_loss,
    "cross_entropy": cross_entropy, "mse": mse_loss, "mae": l1_loss, "huber": huber_loss}
REGRESSION_LOSSES = ("mse", "mae", "huber")
BINARY_LOSSES = ("bce", "logistic", "hinge")
