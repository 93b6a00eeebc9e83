"""Array code written once against an array module ``xp`` (NumPy or CuPy), shared by the backends."""

from __future__ import annotations


def targets(y, mode: str, n_classes: int, dtype, xp):
    """A loss's targets in ``dtype`` from labels or values: "value" (y itself), "sign" (2·y − 1)
    or "one_hot" (rows of ``n_classes``)."""
    if mode == "value":
        return y.astype(dtype, copy=False)
    if mode == "sign":
        return (y * 2 - 1).astype(dtype)
    return xp.eye(n_classes, dtype=dtype)[y]


def softmax_xent(z, labels, smoothing: float, xp):
    """Softmax cross-entropy of each row of logits ``z`` (N, C) with integer ``labels``, label
    smoothing included; returns (per-row losses, softmax probabilities). The CPU's kernel, and
    the CUDA backend's for rows too long for its one-thread-per-row kernel."""
    shifted = z - z.max(axis=1, keepdims=True)
    probs = xp.exp(shifted)
    total = probs.sum(axis=1)
    probs /= total[:, None]
    log_total = xp.log(total)
    loss = log_total - shifted[xp.arange(len(labels)), labels]
    if smoothing:
        loss = (1.0 - smoothing) * loss + smoothing * (log_total - shifted.mean(axis=1))
    return loss, probs


def softmax_xent_grad(probs, labels, smoothing: float, g, scale, xp):
    """dL/dz of softmax_xent: (probs − smoothed one-hot) · g (per row when ``scale`` is None,
    else the 0-d upstream gradient times ``scale``)."""
    n, c = probs.shape
    rows = xp.arange(n)
    if smoothing:
        delta = probs - smoothing / c
        delta[rows, labels] -= 1.0 - smoothing
    else:
        delta = probs.copy()
        delta[rows, labels] -= 1.0
    if scale is None:
        return g.reshape(-1, 1) * delta
    delta *= g * scale  # delta is ours: scale in place
    return delta
