"""The losses' kernels (and dropout's) on CUDA devices: devgrad's fused kernels, launched through
``devgrad.backend.cuda_kernels``. Registered by ``devgrad.nn._kernels`` and imported when a GPU
first runs one; same functions and signatures as the CPU's there."""

from __future__ import annotations

import numpy as np

from devgrad.backend import cuda_kernels as cuda
from devgrad.nn._kernels import softmax_xent_grad_xp, softmax_xent_xp


def dropout_(u, x, p: float):
    """Dropout of ``x`` from uniform draws ``u`` (in [0, 1), or cuRAND's (0, 1] as they come: a
    draw of 1 counts as 0), one launch: ``u`` becomes the mask in place (1/(1-p) where u >= p,
    else 0); returns (mask, x × mask)."""
    y = cuda.module().empty(x.shape, dtype=x.dtype)  # u is drawn in x's dtype (F.dropout)
    return cuda.launch("dropout", float(p), 1.0 / (1.0 - p), x, u, y)


def _pair_loss(name: str, x, y, *params):
    """A per-element loss kernel of (input, target) and its float ``params`` (Huber's delta, the
    hinge's margin): the target takes the input's dtype first (one dtype per T placeholder;
    NumPy would promote)."""
    return cuda.launch(name, x, y.astype(x.dtype, copy=False), *map(float, params))


def _pair_loss_grad(name: str, x, y, g, scale, *params):
    """Its gradient kernel: g is per element when ``scale`` is None, else the 0-d upstream
    gradient, multiplied by ``scale``."""
    per_element = scale is None
    return cuda.launch(name, x, y.astype(x.dtype, copy=False), cuda.contiguous(g.astype(x.dtype, copy=False)),
                       1.0 if per_element else scale, int(per_element), *map(float, params))


def sq_err(x, y):
    return _pair_loss("sq_err", x, y)


def sq_err_grad(x, y, g, scale):
    return _pair_loss_grad("sq_err_grad", x, y, g, scale)


def abs_err(x, y):
    return _pair_loss("abs_err", x, y)


def abs_err_grad(x, y, g, scale):
    return _pair_loss_grad("abs_err_grad", x, y, g, scale)


def huber_err(x, y, delta: float):
    return _pair_loss("huber_err", x, y, delta)


def huber_err_grad(x, y, g, scale, delta: float):
    return _pair_loss_grad("huber_err_grad", x, y, g, scale, delta)


def logistic(x, y):
    return _pair_loss("logistic", x, y)


def logistic_grad(x, y, g, scale):
    return _pair_loss_grad("logistic_grad", x, y, g, scale)


def hinge(x, y, margin: float):
    return _pair_loss("hinge", x, y, margin)


def hinge_grad(x, y, g, scale, margin: float):
    return _pair_loss_grad("hinge_grad", x, y, g, scale, margin)


def bce_logits(z, y, pos_weight: float = 1.0):
    return _pair_loss("bce_logits", z, y, pos_weight)


def bce_logits_grad(z, y, g, scale, pos_weight: float = 1.0):
    return _pair_loss_grad("bce_logits_grad", z, y, g, scale, pos_weight)


# Above this many classes a row is too long for one thread: the vectorised form (a few more
# launches, each using the whole GPU) is faster.
ROW_KERNEL_MAX_CLASSES = 1024


def softmax_xent(z, labels, smoothing: float):
    cp = cuda.module()
    n, c = z.shape
    if c > ROW_KERNEL_MAX_CLASSES:
        return softmax_xent_xp(z, labels, smoothing, cp)
    loss = cp.empty(n, dtype=z.dtype)
    probs = cp.empty(z.shape, dtype=z.dtype)
    cuda.launch("softmax_xent", cuda.contiguous(z), cuda.contiguous(labels.astype(np.int64, copy=False)), c, smoothing,
                loss, probs)
    return loss, probs


def softmax_xent_grad(probs, labels, smoothing: float, g, scale):
    if probs.shape[1] > ROW_KERNEL_MAX_CLASSES:
        return softmax_xent_grad_xp(probs, labels, smoothing, g, scale, cuda.module())
    per_row = scale is None
    return cuda.launch("softmax_xent_grad", probs, cuda.contiguous(labels.astype(np.int64, copy=False)),
                       cuda.contiguous(g.astype(probs.dtype, copy=False)), probs.shape[1], smoothing,
                       1.0 if per_row else scale, int(per_row))
