"""Classification losses in PyTorch's general forms: cross-entropy and NLL with class ``weight``,
``ignore_index``, probability (soft) targets and ``(N, C, d...)`` inputs; binary cross-entropy
on probabilities; BCE with logits with per-class ``pos_weight`` and ``weight`` tensors.

They are written with differentiable ops (log_softmax, indexing, where), so every order of
derivative follows; ``nn.functional`` sends the common case (integer labels, no weight, no
ignored label) to its fused kernels instead. Means are PyTorch's: a weighted mean divides by the
sum of the weights of the counted labels; a soft-target mean by the number of rows.
"""

from __future__ import annotations

import numpy as np

from devgrad.backend import DeviceError
from devgrad.core import Function, Tensor
from devgrad.ops.activation import log_softmax, softplus
from devgrad.ops.elementwise import Where, log, maximum
from devgrad.ops.shape import getitem, indexed

REDUCTIONS = ("mean", "sum", "none")


def as_tensor_like(value, like: Tensor, name: str, dtype=None) -> Tensor:
    """``value`` (a Tensor, array or list) as a tensor on ``like``'s device, in ``dtype`` (default
    ``like``'s); a host array meeting a GPU tensor is an error, never a hidden transfer."""
    if isinstance(value, Tensor):
        if value.device is not like.device:
            raise DeviceError(f"{name}: the input is on {like.device} but this tensor on {value.device}")
        return value if dtype is None or value.dtype == dtype else Tensor._make(value.data.astype(dtype), like.device)
    if not like.device.is_host and isinstance(value, np.ndarray):
        raise DeviceError(f"{name}: a NumPy array (host memory) met an input on {like.device}; pass "
                          f"dg.tensor(array, device='{like.device}')")
    return Tensor._make(like.device.put(np.asarray(value, dtype=dtype or like.dtype)), like.device)


def _reduce(loss: Tensor, reduction: str, divisor=None) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / divisor if divisor is not None else loss.mean()
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _rows(x: Tensor, name: str) -> tuple[Tensor, tuple]:
    """(M, C) rows of an (N, C, d...) input (class axis 1; a (C,) input is one row) and the shape
    (N, d...) that per-row losses take back."""
    if x.ndim == 1:
        return x.reshape(1, -1), ()
    if x.ndim < 1:
        raise ValueError(f"{name}: the input needs a class axis, got shape {x.shape}")
    if x.ndim == 2:
        return x, x.shape[:1]
    moved = x.transpose(0, *range(2, x.ndim), 1)
    return moved.reshape(-1, x.shape[1]), moved.shape[:-1]


def _class_weight(weight, like: Tensor, n_classes: int, name: str):
    if weight is None:
        return None
    w = as_tensor_like(weight, like, name)
    if w.shape != (n_classes,):
        raise ValueError(f"{name}: weight must have one value per class, shape ({n_classes},), got {w.shape}")
    return w


def _picked_nll(log_probs: Tensor, target, weight, ignore_index: int, reduction: str, name: str) -> Tensor:
    """−weight[y]·log_probs[y] per position of class-index targets, ignored positions 0; a mean
    divides by the counted weights (PyTorch's nll_loss)."""
    rows, back = _rows(log_probs, name)
    n_classes = rows.shape[1]
    labels = as_tensor_like(target, log_probs, name, dtype=np.int64)
    if labels.shape != (back or ()):
        raise ValueError(f"{name}: expected logits of shape (N, C) (or (C,), (N, C, d...)) and labels of shape "
                         f"(N,) (or (), (N, d...)), got {log_probs.shape} and {labels.shape}")
    flat = labels.data.reshape(-1)
    keep = flat != ignore_index
    if log_probs.device.host_reads_are_free and flat.size:
        counted = flat[keep]
        if counted.size and (counted.min() < 0 or counted.max() >= n_classes):
            raise ValueError(f"{name}: labels must be in [0, {n_classes - 1}] (or ignore_index={ignore_index}), "
                             f"got values from {int(counted.min())} to {int(counted.max())}")
    xp = log_probs.xp
    safe = xp.where(keep, flat, 0)
    picked = getitem(rows, (xp.arange(flat.size), safe))
    w = _class_weight(weight, log_probs, n_classes, name)
    # indexed: a step recorded for replay sees the lookup by the batch's labels (w.data[safe] would be
    # frozen at the recording's labels: the recording does not trace a weight given to the loss)
    row_weight = keep.astype(log_probs.dtype) if w is None else xp.where(keep, indexed(w.data, safe), 0).astype(w.dtype)
    # selected, not multiplied by 0: with every label ignored the mean is 0/0 = NaN, and an
    # ignored position's gradient must stay 0 (PyTorch's), not 0·inf
    loss = Where.apply(-picked * Tensor._make(row_weight, log_probs.device), 0.0, cond=keep)
    return _reduce(loss.reshape(back), reduction, Tensor._make(row_weight.sum(), log_probs.device))


def nll_loss(log_probs: Tensor, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """PyTorch's ``nll_loss`` with class ``weight``, ``ignore_index`` and (N, C, d...) inputs."""
    return _picked_nll(log_probs, target, weight, ignore_index, reduction, "nll_loss")


def cross_entropy(logits: Tensor, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """PyTorch's ``cross_entropy`` in all its forms: class-index or probability targets, class
    ``weight``, ``ignore_index``, ``label_smoothing``, (C,), (N, C) or (N, C, d...) logits."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    class_axis = 0 if logits.ndim == 1 else 1
    log_probs = log_softmax(logits, axis=class_axis)
    n_classes = logits.shape[class_axis]
    target_dtype = target.dtype if isinstance(target, Tensor) else np.asarray(target).dtype
    if target_dtype.kind == "f":
        return _soft_cross_entropy(log_probs, target, weight, reduction, label_smoothing)
    nll = _picked_nll(log_probs, target, weight, ignore_index, reduction, "cross_entropy")
    if not label_smoothing:
        return nll
    rows, back = _rows(log_probs, "cross_entropy")
    w = _class_weight(weight, logits, n_classes, "cross_entropy")
    smooth = -(rows if w is None else rows * w).sum(axis=1)
    flat = as_tensor_like(target, logits, "cross_entropy", dtype=np.int64).data.reshape(-1)
    keep = flat != ignore_index
    smooth = Where.apply(smooth, 0.0, cond=keep)
    xp = logits.xp
    counted = keep.sum() if w is None else xp.where(keep, indexed(w.data, xp.where(keep, flat, 0)), 0).sum()
    smooth = _reduce(smooth.reshape(back), reduction, Tensor._make(xp.asarray(counted, dtype=logits.dtype),
                                                                    logits.device))
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _soft_cross_entropy(log_probs: Tensor, target, weight, reduction: str, label_smoothing: float) -> Tensor:
    """−Σ_c weight_c·t_c·log p_c per position, for probability targets t of the input's shape."""
    probs = as_tensor_like(target, log_probs, "cross_entropy")
    if probs.shape != log_probs.shape:
        raise TypeError(f"cross_entropy: a float target holds probabilities of the input's shape {log_probs.shape}, "
                        f"got shape {probs.shape}; labels must be integer class indices")
    rows, back = _rows(log_probs, "cross_entropy")
    target_rows, _ = _rows(probs, "cross_entropy")
    n_classes = rows.shape[1]
    if label_smoothing:
        target_rows = target_rows * (1.0 - label_smoothing) + label_smoothing / n_classes
    w = _class_weight(weight, log_probs, n_classes, "cross_entropy")
    terms = rows * target_rows if w is None else rows * target_rows * w
    return _reduce(-terms.sum(axis=1).reshape(back), reduction)


def binary_cross_entropy(probs: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """−weight·(y·log p + (1 − y)·log(1 − p)) for probabilities p in [0, 1], each log clamped at
    −100 as PyTorch's (so p = 0 or 1 gives a finite loss)."""
    target = as_tensor_like(target, probs, "binary_cross_entropy")
    if target.shape != probs.shape:
        raise ValueError(f"binary_cross_entropy: input shape {probs.shape} and target shape {target.shape} differ")
    if probs.device.host_reads_are_free and probs.data.size:
        lo, hi = float(probs.data.min()), float(probs.data.max())
        if not (0.0 <= lo and hi <= 1.0):
            raise ValueError(f"binary_cross_entropy: the input must hold probabilities in [0, 1], got values from "
                             f"{lo} to {hi}; for logits use binary_cross_entropy_with_logits")
    loss = _BCEProbabilities.apply(probs, target)
    if weight is not None:
        loss = loss * as_tensor_like(weight, probs, "binary_cross_entropy")
    return _reduce(loss, reduction)


_EPS = float(np.float32(1e-12))  # PyTorch's floor of p·(1 − p), a float32 constant


class _BCEProbabilities(Function):
    """−(y·log p + (1 − y)·log(1 − p)), logs clamped at −100, with PyTorch's gradients: in p,
    (p − y) / max(p·(1 − p), 1e−12), finite and large at p = 0 or 1 where the clamped logs are
    flat; in y, −log(p / (1 − p)), unclamped (±inf at p = 0 or 1), as PyTorch's."""

    __slots__ = ()
    save_inputs = True

    def forward(self, p, y):
        xp = self.device.xp
        return -(y * xp.maximum(xp.log(p), -100.0) + (1.0 - y) * xp.maximum(xp.log1p(-p), -100.0))

    def backward(self, g):
        p, y = self.inputs
        need_p, need_y = self.needs_input_grad
        dp = g * (p - y) / maximum(p * (1.0 - p), _EPS) if need_p else None
        dy = -(g * log(p / (1.0 - p))) if need_y else None
        return dp, dy


def weighted_bce_with_logits(logits: Tensor, target, weight=None, pos_weight=None, reduction: str = "mean"):
    """BCE with logits whose ``pos_weight`` (one per class, broadcast along the last axis) and
    ``weight`` (per element, broadcast) are tensors: w·y·softplus(−z) + (1 − y)·softplus(z)."""
    target = as_tensor_like(target, logits, "binary_cross_entropy_with_logits")
    if target.shape != logits.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: input shape {logits.shape} and target shape "
                         f"{target.shape} differ")
    if pos_weight is None:
        loss = softplus(logits) - logits * target
    else:
        w = as_tensor_like(pos_weight, logits, "binary_cross_entropy_with_logits")
        loss = softplus(-logits) * target * w + softplus(logits) * (1.0 - target)
    if weight is not None:
        loss = loss * as_tensor_like(weight, logits, "binary_cross_entropy_with_logits")
    return _reduce(loss, reduction)
