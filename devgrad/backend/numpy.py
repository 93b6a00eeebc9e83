"""The CPU backend: NumPy arrays in host memory."""

from __future__ import annotations

import resource
import sys

import numpy as np

xp = np


def to_device(array) -> np.ndarray:
    """Return a host NumPy array (no copy when it already is one)."""
    return np.asarray(array)


def to_host(array) -> np.ndarray:
    """Return the array as a host NumPy array."""
    return np.asarray(array)


def scatter_add(target: np.ndarray, index, values) -> None:
    """target[index] += values, accumulating repeated indices."""
    np.add.at(target, index, values)


def generator(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def uniform(gen: np.random.Generator, shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return gen.random(shape, dtype=dtype)
    return gen.random(shape).astype(dtype)


def sigmoid_(x: np.ndarray) -> np.ndarray:
    """The logistic function in place."""
    with np.errstate(over="ignore"):
        np.negative(x, out=x)
        np.exp(x, out=x)
        x += 1
        np.reciprocal(x, out=x)
    return x


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in place on one buffer; exp overflowing to inf gives exactly 0, silently."""
    with np.errstate(over="ignore"):
        out = np.negative(x, out=np.empty_like(x))  # an array even for 0-d input
        np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)
    return out


# -- fused kernels: on the CPU, sequences of in-place NumPy calls through one scratch buffer --------

def act_grad(act: str, g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dz from dL/dy = g for y = act(z), written from the activation's output y."""
    if act == "relu":
        return g * (y > 0)
    # Operators rather than out= calls: for 0-d y they give NumPy scalars, which *= rebinds.
    out = 1.0 - y if act == "sigmoid" else 1.0 - y * y
    if act == "sigmoid":
        out *= y
    out *= g
    return out


def bias_act_(out: np.ndarray, bias, act: str) -> np.ndarray:
    """out ← act(out + bias) in place (bias None: no bias)."""
    if bias is not None:
        out += bias
    if act == "relu":
        np.maximum(out, 0, out=out)
    elif act == "sigmoid":
        sigmoid_(out)
    else:
        np.tanh(out, out=out)
    return out


def bce_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-element binary cross-entropy of logits z and targets y: softplus(z) − z·y."""
    return np.logaddexp(0, z) - z * y  # logaddexp(0, z) = log(1 + e^z), stable in one pass


def bce_logits_grad(z: np.ndarray, y: np.ndarray, g, scale) -> np.ndarray:
    """dL/dz of bce_logits: (sigmoid(z) − y) · g (per element when ``scale`` is None, else the
    0-d upstream gradient times ``scale``)."""
    gz = sigmoid(z)  # a fresh array: finish the gradient in place
    gz -= y
    gz *= g if scale is None else g * scale
    return gz


def softmax_xent(z: np.ndarray, labels: np.ndarray, smoothing: float, xp=np):
    """Softmax cross-entropy of each row of logits ``z`` (N, C) with integer ``labels``, label
    smoothing included; returns (per-row losses, softmax probabilities). Written against
    ``xp``: the CUDA backend uses it too, for rows too long for its one-thread-per-row kernel."""
    shifted = z - z.max(axis=1, keepdims=True)
    probs = xp.exp(shifted)
    total = probs.sum(axis=1)
    probs /= total[:, None]
    log_total = xp.log(total)
    loss = log_total - shifted[xp.arange(len(labels)), labels]
    if smoothing:
        loss = (1.0 - smoothing) * loss + smoothing * (log_total - shifted.mean(axis=1))
    return loss, probs


def softmax_xent_grad(probs: np.ndarray, labels: np.ndarray, smoothing: float, g, scale, xp=np):
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


def sgd_update(p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize, first) -> None:
    """PyTorch's SGD on one parameter, in place: buf ← momentum·buf + (1 − dampening)·g
    (buf ← g on the ``first`` step), p ← p − lr·(g + momentum·buf if nesterov else buf)."""
    if maximize:
        g = -g
    if weight_decay:
        g = g + weight_decay * p
    if buf is not None:
        if first:
            np.copyto(buf, g)
        else:
            buf *= momentum
            np.multiply(g, 1.0 - dampening, out=tmp)
            buf += tmp
        g = g + momentum * buf if nesterov else buf
    np.multiply(g, lr, out=tmp)
    p -= tmp


def adam_update(p, g, m, v, vmax, tmp, lr, step, b1, b2, eps, weight_decay, decoupled, maximize) -> None:
    """Adam/AdamW (AMSGrad when ``vmax`` is given) on one parameter, in place; every temporary
    goes through ``tmp``. ``lr`` and ``step`` may be numbers or 0-d arrays."""
    if maximize:
        g = -g
    if weight_decay:
        if decoupled:
            p *= 1.0 - lr * weight_decay
        else:
            g = g + weight_decay * p
    m *= b1
    np.multiply(g, 1.0 - b1, out=tmp)
    m += tmp
    v *= b2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - b2
    v += tmp
    if vmax is not None:
        np.maximum(vmax, v, out=vmax)
        v = vmax
    bias1 = 1.0 - b1**step
    bias2_sqrt = np.sqrt(1.0 - b2**step)
    np.sqrt(v, out=tmp)
    tmp /= bias2_sqrt
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= lr / bias1
    p -= tmp


def synchronize() -> None:
    """NumPy work is synchronous: nothing to wait for."""


def memory_info() -> dict:
    """Peak resident memory of this process in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return {"peak_rss_bytes": peak if sys.platform == "darwin" else peak * 1024}
