"""The losses' kernels (and dropout's), registered per device kind for ``nn.functional``.

Each loss is one node in the graph: a per-element (or per-row) kernel forward and one for its
gradient. The CPU's are short chains of in-place NumPy calls, defined here; CUDA's launch
devgrad's fused kernels (``devgrad.nn._cuda_kernels``, imported when a GPU first runs one).
``softmax_xent_xp``/``softmax_xent_grad_xp`` are written against any array module: the CPU's
kernel, and CUDA's for rows too long for its one-thread-per-row kernel. Those that can meet
inf - inf or 0·inf are ``quiet`` (devgrad.backend.fp_errors): inside a loss node's forward or
the backward walk they only read NumPy's error state, which is set already.
"""

from __future__ import annotations

import numpy as np

from devgrad.backend import register_kernel
from devgrad.backend.cpu_kernels import ONE, ZERO, mul, sigmoid
from devgrad.backend.fp_errors import quiet


def dropout_(u: np.ndarray, x: np.ndarray, p: float):
    """Dropout of ``x`` from uniform draws ``u`` in [0, 1): ``u`` becomes the mask in place
    (1/(1-p) where u >= p, else 0); returns (mask, x × mask)."""
    keep = u >= p
    u[...] = keep
    u *= 1.0 / (1.0 - p)
    return u, mul(x, u)


def _new(ufunc, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ufunc(x, y) into a fresh array of x's dtype and shape (an array also for 0-d inputs), for
    the in-place steps that follow."""
    return ufunc(x, y, out=np.empty_like(x))


def _upstream(g, scale):
    """The factor a pair loss's gradient ends with: g per element (``scale`` None), else the 0-d
    upstream gradient times ``scale``."""
    if scale is None:
        return g
    if type(g) is np.ndarray and not g.ndim:
        # NumPy's scalar arithmetic on its value: the same product (the float rounded to g's dtype,
        # then one multiplication in it) and the same NumPy scalar as the ufunc's, without its call
        g = g[()]
    return g * scale


def sq_err(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-element squared error (x − y)²."""
    d = x - y
    d *= d
    return d


def sq_err_grad(x: np.ndarray, y: np.ndarray, g, scale) -> np.ndarray:
    """dL/dx of sq_err: 2·(x − y)·g (per element when ``scale`` is None, else the 0-d upstream
    gradient times ``scale``)."""
    gx = x - y
    gx *= 2 * _upstream(g, scale)
    return gx


def abs_err(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-element absolute error |x − y| (mae)."""
    d = _new(np.subtract, x, y)
    return np.abs(d, out=d)


def abs_err_grad(x: np.ndarray, y: np.ndarray, g, scale) -> np.ndarray:
    """dL/dx of abs_err: sign(x − y)·g, with sign 0 where x = y and at NaN (PyTorch's l1_loss)."""
    d = _new(np.subtract, x, y)
    gx = np.asarray(d > 0, dtype=d.dtype)
    gx -= d < 0
    gx *= _upstream(g, scale)
    return gx


def huber_err(x: np.ndarray, y: np.ndarray, delta: float) -> np.ndarray:
    """Per-element Huber loss of d = x − y: ½d² where |d| ≤ delta, else delta·(|d| − ½delta)."""
    a = _new(np.subtract, x, y)
    np.abs(a, out=a)
    q = np.minimum(a, delta, out=np.empty_like(a))  # ½q² + delta·(|d| − q): both pieces at once
    a -= q
    a *= delta
    q *= q
    q *= 0.5
    a += q
    return a


def huber_err_grad(x: np.ndarray, y: np.ndarray, g, scale, delta: float) -> np.ndarray:
    """dL/dx of huber_err: d = x − y where |d| ≤ delta, else delta·sign(d); times g."""
    gx = _new(np.subtract, x, y)
    np.clip(gx, -delta, delta, out=gx)  # NaN stays NaN
    gx *= _upstream(g, scale)
    return gx


@quiet
def logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-element logistic loss log(1 + exp(−y·x)) of scores x and labels y ∈ {−1, +1}."""
    t = _new(np.multiply, y, x)
    np.negative(t, out=t)
    return np.logaddexp(0, t, out=t)  # a NaN score gives a NaN loss, which the run reports


def logistic_grad(x: np.ndarray, y: np.ndarray, g, scale) -> np.ndarray:
    """dL/dx of logistic: −y·sigmoid(−y·x)·g, written y·(sigmoid(y·x) − 1)·g."""
    t = sigmoid(_new(np.multiply, y, x))
    t -= 1
    t *= y
    t *= _upstream(g, scale)
    return t


def hinge(x: np.ndarray, y: np.ndarray, margin: float) -> np.ndarray:
    """Per-element hinge loss max(0, margin − y·x) (NaN stays NaN)."""
    t = _new(np.multiply, y, x)
    np.subtract(margin, t, out=t)
    return np.clip(t, 0.0, None, out=t)


def hinge_grad(x: np.ndarray, y: np.ndarray, g, scale, margin: float) -> np.ndarray:
    """dL/dx of hinge: −y where margin − y·x ≥ 0 (the kink included, as clip's gradient), else 0;
    times g."""
    t = _new(np.multiply, y, x)
    np.subtract(margin, t, out=t)
    gx = np.negative(y, out=np.empty_like(t))
    gx *= t >= 0
    gx *= _upstream(g, scale)
    return gx


@quiet
def bce_logits(z: np.ndarray, y: np.ndarray, pos_weight: float = 1.0) -> np.ndarray:
    """Per-element binary cross-entropy of logits z and targets y: softplus(z) − z·y; with a
    ``pos_weight``, pos_weight·y·softplus(−z) + (1 − y)·softplus(z). At z = ±inf the limit: inf
    where the infinite term's weight is nonzero, else 0 (never inf·0 = NaN); a NaN logit gives a
    NaN loss, which the run reports."""
    if pos_weight == 1.0:
        # logaddexp(0, z) = log(1 + e^z), stable in one pass (0 as an array of z's dtype: cpu_kernels.ZERO)
        loss = np.asarray(np.logaddexp(ZERO.get(z.dtype, 0), z) - z * y)
    else:
        loss = np.logaddexp(0, -z)
        loss *= y
        loss *= pos_weight
        rest = 1 - y
        rest *= np.logaddexp(0, z)
        loss += rest
    # An infinite logit makes the formula's loss NaN exactly where its limit differs (inf - inf,
    # inf·0), so one sum finds them: a NaN-free total needs no fix (one reduction, not two passes).
    # The branch reads a flag (total != total: NaN), not the total: a recorded step (cpu_capture)
    # guards on the bytes read. On a NumPy scalar the comparison is scalar math, not another ufunc call.
    total = np.add.reduce(loss, axis=None)
    if total != total:  # noqa: PLR0124 - NaN is the one value unequal to itself
        return _infinite_logits(np.asarray(loss), z, y, pos_weight)
    return loss


def _infinite_logits(loss: np.ndarray, z: np.ndarray, y: np.ndarray, pos_weight: float) -> np.ndarray:
    """``loss`` with bce_logits's limits where a logit is ±inf."""
    infinite = np.isinf(z)
    if infinite.any():
        zi, yi = z[infinite], y[infinite]
        weight = np.where(zi > 0, 1 - yi, pos_weight * yi)  # the weight of the term that is infinite
        loss[infinite] = np.where(weight == 0, 0, weight * np.inf)
    return loss


@quiet  # exp may overflow (to inf: a gradient of exactly -y·g)
def bce_logits_grad(z: np.ndarray, y: np.ndarray, g, scale, pos_weight: float = 1.0) -> np.ndarray:
    """dL/dz of bce_logits: (sigmoid(z) − y) · g (per element when ``scale`` is None, else the
    0-d upstream gradient times ``scale``); with a ``pos_weight``,
    ((1 − y)·sigmoid(z) − pos_weight·y·sigmoid(−z)) · g."""
    if z.ndim:  # sigmoid(z) inlined, the same calls (every step of a binary classifier)
        gz = np.negative(z)  # a fresh array: finish the gradient in place
        np.exp(gz, out=gz)
        gz += ONE.get(gz.dtype, 1)
        np.reciprocal(gz, out=gz)
    else:
        gz = sigmoid(z)
    if pos_weight == 1.0:
        gz -= y
    else:
        positive = sigmoid(-z)  # not 1 − sigmoid(z), which is 0 in float32 from z ≈ 17 on
        positive *= y
        positive *= pos_weight
        gz *= 1 - y
        gz -= positive
    gz *= _upstream(g, scale)
    return gz


def softmax_xent(z: np.ndarray, labels: np.ndarray, smoothing: float):
    """Softmax cross-entropy of each row of logits ``z`` (N, C) with integer ``labels``, label
    smoothing included: (per-row losses, softmax probabilities)."""
    return softmax_xent_xp(z, labels, smoothing, np)


def softmax_xent_grad(probs: np.ndarray, labels: np.ndarray, smoothing: float, g, scale):
    """dL/dz of softmax_xent: (probs − smoothed one-hot) · g (per row when ``scale`` is None,
    else the 0-d upstream gradient times ``scale``)."""
    return softmax_xent_grad_xp(probs, labels, smoothing, g, scale, np)


def softmax_xent_xp(z, labels, smoothing: float, xp):
    """Softmax cross-entropy of each row of logits ``z`` (N, C) with integer ``labels``, label
    smoothing included; returns (per-row losses, softmax probabilities). The CPU's kernel, and
    the CUDA backend's for rows too long for its one-thread-per-row kernel."""
    if xp is np:  # the ufuncs' reductions themselves: .max and .sum add a Python wrapper each (every step)
        shifted = z - np.maximum.reduce(z, axis=1, keepdims=True)
        probs = np.exp(shifted)
        total = np.add.reduce(probs, axis=1)
    else:
        shifted = z - z.max(axis=1, keepdims=True)
        probs = xp.exp(shifted)
        total = probs.sum(axis=1)
    probs /= total[:, None]
    log_total = xp.log(total)
    loss = log_total - shifted[xp.arange(len(labels)), labels]
    if smoothing:
        loss = (1.0 - smoothing) * loss + smoothing * (log_total - shifted.mean(axis=1))
    return loss, probs


def softmax_xent_grad_xp(probs, labels, smoothing: float, g, scale, xp):
    """dL/dz of softmax_xent: (probs − smoothed one-hot) · g (per row when ``scale`` is None,
    else the 0-d upstream gradient times ``scale``)."""
    n, c = probs.shape
    rows = xp.arange(n)
    if smoothing:
        delta = probs - smoothing / c
        delta[rows, labels] -= 1.0 - smoothing
    else:
        delta = probs.copy()
        delta[rows, labels] -= ONE.get(delta.dtype, 1.0) if xp is np else 1.0
    if scale is None:
        return g.reshape(-1, 1) * delta
    delta *= _upstream(g, scale) if xp is np else g * scale  # delta is ours: scale in place
    return delta


KERNELS = ("sq_err", "sq_err_grad", "abs_err", "abs_err_grad", "huber_err", "huber_err_grad", "logistic",
           "logistic_grad", "hinge", "hinge_grad", "bce_logits", "bce_logits_grad", "softmax_xent",
           "softmax_xent_grad", "dropout_")
for _name in KERNELS:
    register_kernel(_name, "cpu", globals()[_name])
    register_kernel(_name, "cuda", "devgrad.nn._cuda_kernels")
