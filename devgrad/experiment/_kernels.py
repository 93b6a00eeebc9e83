"""The training loop's device kernels, registered per device kind for the experiment layer: the
epoch's metric sums (``class_sums``, ``reg_sums``, added on the device so that a step never
waits for the host) and a loss's targets from a batch's labels (``targets``). The CPU's are
defined here; CUDA's (``devgrad.experiment._cuda_kernels``) are imported when a GPU first runs one.
"""

from __future__ import annotations

import numpy as np

from devgrad.backend import register_kernel


def class_sums(z: np.ndarray, labels: np.ndarray, loss: np.ndarray, weight: float, threshold: float,
               loss_sum: np.ndarray, hits: np.ndarray) -> None:
    """Add a classification batch to its epoch's sums: ``hits`` += rows whose prediction (argmax
    of z's row; for one output, z > threshold) is their label; ``loss_sum`` += loss × weight
    (in float64)."""
    if z.ndim != 2:
        z = z.reshape(z.shape[0], int(np.prod(z.shape[1:], dtype=np.int64)))  # (rows, outputs)
    pred = (z[:, 0] > threshold) if z.shape[1] == 1 else z.argmax(axis=1)
    hits += np.count_nonzero(pred == labels.reshape(-1))
    loss_sum += np.asarray(loss, dtype=np.float64) * weight  # an array, not np.float64(): a recorded step sees it


def reg_sums(out: np.ndarray, y: np.ndarray, loss, weight: float, loss_sum: np.ndarray, sse: np.ndarray,
             sae: np.ndarray) -> None:
    """Add a regression batch to its epoch's sums: loss × weight, Σ(out − y)² and Σ|out − y|."""
    error = out.reshape(-1) - y.reshape(-1).astype(np.float64, copy=False)
    loss_sum += np.asarray(loss, dtype=np.float64) * weight  # an array, not np.float64(): a recorded step sees it
    sse += error @ error
    sae += np.abs(error).sum()


def targets(y: np.ndarray, mode: str, n_classes: int, dtype) -> np.ndarray:
    """A loss's targets in ``dtype``: "value" (y itself), "sign" (2·y − 1) or "one_hot"."""
    return targets_xp(y, mode, n_classes, dtype, np)


def targets_xp(y, mode: str, n_classes: int, dtype, xp):
    """A loss's targets in ``dtype`` from labels or values: "value" (y itself), "sign" (2·y − 1)
    or "one_hot" (rows of ``n_classes``)."""
    if mode == "value":
        return y.astype(dtype, copy=False)
    if mode == "sign":
        return (y * 2 - 1).astype(dtype)
    return (y[..., None] == xp.arange(n_classes)).astype(dtype)  # a ufunc of y: a captured step replays it


KERNELS = ("class_sums", "reg_sums", "targets")
for _name in KERNELS:
    register_kernel(_name, "cpu", globals()[_name])
    register_kernel(_name, "cuda", "devgrad.experiment._cuda_kernels")
