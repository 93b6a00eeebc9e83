"""The CPU's fused kernels: what one CUDA kernel does, as short chains of in-place NumPy calls.

Reached as ``device.kernels.<name>`` for the CPU; ``devgrad.backend.cuda_kernels`` has the
same functions with the same signatures for CUDA devices.
"""

from __future__ import annotations

import numpy as np

from devgrad.backend import generic


def scatter_add(target: np.ndarray, index, values) -> None:
    """target[index] += values, accumulating repeated indices."""
    np.add.at(target, index, values)


def _sigmoid_inplace(x: np.ndarray) -> np.ndarray:
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
    """out ← act(out + bias) in place (bias None: no bias; act "identity": the bias only)."""
    if bias is not None:
        out += bias
    if act == "relu":
        np.maximum(out, 0, out=out)
    elif act == "sigmoid":
        _sigmoid_inplace(out)
    elif act == "tanh":
        np.tanh(out, out=out)
    elif act != "identity":
        raise ValueError(f"bias_act_: unknown activation {act!r}")
    return out


def fill_(out: np.ndarray, value: float) -> np.ndarray:
    """Every element of ``out`` set to ``value``, in place; returns ``out``."""
    out.fill(value)
    return out


def full(shape, value: float, dtype) -> np.ndarray:
    """A new array of ``shape`` and ``dtype`` filled with ``value``."""
    return np.full(shape, value, dtype=dtype)


def dropout_(u: np.ndarray, x: np.ndarray, p: float):
    """Dropout of ``x`` from uniform draws ``u`` in [0, 1): ``u`` becomes the mask in place
    (1/(1-p) where u >= p, else 0); returns (mask, x × mask)."""
    keep = u >= p
    u[...] = keep
    u *= 1.0 / (1.0 - p)
    return u, mul(x, u)


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a × b into a new array of a's dtype and shape (an array also for 0-d a)."""
    return np.multiply(a, b, out=np.empty_like(a))


def _new(ufunc, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ufunc(x, y) into a fresh array of x's dtype and shape (an array also for 0-d inputs), for
    the in-place steps that follow."""
    return ufunc(x, y, out=np.empty_like(x))


def _upstream(g, scale):
    """The factor a pair loss's gradient ends with: g per element (``scale`` None), else the 0-d
    upstream gradient times ``scale``."""
    return g if scale is None else g * scale


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
    """dL/dx of abs_err: sign(x − y)·g (0 where x = y, as PyTorch's l1_loss)."""
    gx = _new(np.subtract, x, y)
    np.sign(gx, out=gx)
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


def logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-element logistic loss log(1 + exp(−y·x)) of scores x and labels y ∈ {−1, +1}."""
    t = _new(np.multiply, y, x)
    np.negative(t, out=t)
    with np.errstate(invalid="ignore"):  # a NaN score gives a NaN loss, which the run reports
        return np.logaddexp(0, t, out=t)


def logistic_grad(x: np.ndarray, y: np.ndarray, g, scale) -> np.ndarray:
    """dL/dx of logistic: −y·sigmoid(−y·x)·g, written y·(sigmoid(y·x) − 1)·g."""
    t = _sigmoid_inplace(_new(np.multiply, y, x))
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


def bce_logits(z: np.ndarray, y: np.ndarray, pos_weight: float = 1.0) -> np.ndarray:
    """Per-element binary cross-entropy of logits z and targets y: softplus(z) − z·y; with a
    ``pos_weight``, pos_weight·y·softplus(−z) + (1 − y)·softplus(z)."""
    with np.errstate(invalid="ignore"):  # a NaN logit gives a NaN loss, which the run reports
        if pos_weight == 1.0:
            return np.logaddexp(0, z) - z * y  # logaddexp(0, z) = log(1 + e^z), stable in one pass
        loss = np.logaddexp(0, -z)
        loss *= y
        loss *= pos_weight
        rest = 1 - y
        rest *= np.logaddexp(0, z)
    loss += rest
    return loss


def bce_logits_grad(z: np.ndarray, y: np.ndarray, g, scale, pos_weight: float = 1.0) -> np.ndarray:
    """dL/dz of bce_logits: (sigmoid(z) − y) · g (per element when ``scale`` is None, else the
    0-d upstream gradient times ``scale``); with a ``pos_weight``,
    ((1 − y)·sigmoid(z) − pos_weight·y·sigmoid(−z)) · g."""
    gz = sigmoid(z)  # a fresh array: finish the gradient in place
    if pos_weight == 1.0:
        gz -= y
    else:
        positive = 1 - gz  # sigmoid(−z)
        positive *= y
        positive *= pos_weight
        gz *= 1 - y
        gz -= positive
    gz *= _upstream(g, scale)
    return gz


def softmax_xent(z: np.ndarray, labels: np.ndarray, smoothing: float):
    """Softmax cross-entropy of each row of logits ``z`` (N, C) with integer ``labels``, label
    smoothing included: (per-row losses, softmax probabilities)."""
    return generic.softmax_xent(z, labels, smoothing, np)


def softmax_xent_grad(probs: np.ndarray, labels: np.ndarray, smoothing: float, g, scale):
    """dL/dz of softmax_xent: (probs − smoothed one-hot) · g (per row when ``scale`` is None,
    else the 0-d upstream gradient times ``scale``)."""
    return generic.softmax_xent_grad(probs, labels, smoothing, g, scale, np)


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


# -- every parameter of a group at once (the CUDA backend launches one kernel; NumPy loops) ------

def increment_steps(steps) -> None:
    """Add 1, in place, to each 0-d step-count array (a capturable optimizer's counts)."""
    for step in steps:
        step += 1


def adam_update_many(items, lr, b1, b2, eps, weight_decay, decoupled, maximize) -> None:
    """``adam_update`` for each item (p, g, m, v, vmax or None, scratch, step)."""
    for p, g, m, v, vmax, tmp, step in items:
        adam_update(p, g, m, v, vmax, tmp, lr, step, b1, b2, eps, weight_decay, decoupled, maximize)


def sgd_update_many(items, lr, momentum, dampening, weight_decay, nesterov, maximize) -> None:
    """``sgd_update`` for each item (p, g, momentum buffer or None, scratch, first)."""
    for p, g, buf, tmp, first in items:
        sgd_update(p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize, first)


def rmsprop_update_many(items, lr, alpha, eps, weight_decay, momentum, centered, maximize) -> None:
    """RMSprop, as PyTorch's, for each item (p, g, square_avg, momentum buffer or None, grad_avg
    or None), in place."""
    for p, grad, sq, buf, ga in items:
        g = -grad if maximize else grad
        if weight_decay:
            g = g + weight_decay * p
        sq *= alpha
        sq += (1.0 - alpha) * (g * g)
        if centered:
            ga *= alpha
            ga += (1.0 - alpha) * g
            avg = np.sqrt(sq - ga * ga)
        else:
            avg = np.sqrt(sq)
        avg += eps
        if momentum > 0:
            buf *= momentum
            buf += g / avg
            p -= lr * buf
        else:
            p -= lr * (g / avg)


def adagrad_update_many(items, lr, lr_decay, weight_decay, eps, maximize) -> None:
    """Adagrad, as PyTorch's, for each item (p, g, sum of squared gradients, step count: already
    advanced), in place."""
    for p, grad, total, step in items:
        g = -grad if maximize else grad
        if weight_decay:
            g = g + weight_decay * p
        clr = lr / (1.0 + (step - 1) * lr_decay)
        total += g * g
        std = np.sqrt(total)
        std += eps
        p -= clr * (g / std)


def class_sums(z: np.ndarray, labels: np.ndarray, loss: np.ndarray, weight: float, threshold: float,
               loss_sum: np.ndarray, hits: np.ndarray) -> None:
    """Add a classification batch to its epoch's sums: ``hits`` += rows whose prediction (argmax
    of z's row; for one output, z > threshold) is their label; ``loss_sum`` += loss × weight
    (in float64)."""
    if z.ndim != 2:
        z = z.reshape(z.shape[0], int(np.prod(z.shape[1:], dtype=np.int64)))  # (rows, outputs)
    pred = (z[:, 0] > threshold) if z.shape[1] == 1 else z.argmax(axis=1)
    hits += np.count_nonzero(pred == labels.reshape(-1))
    loss_sum += np.float64(loss) * weight


def reg_sums(out: np.ndarray, y: np.ndarray, loss, weight: float, loss_sum: np.ndarray, sse: np.ndarray,
             sae: np.ndarray) -> None:
    """Add a regression batch to its epoch's sums: loss × weight, Σ(out − y)² and Σ|out − y|."""
    error = out.reshape(-1) - y.reshape(-1).astype(np.float64, copy=False)
    loss_sum += np.float64(loss) * weight
    sse += error @ error
    sae += np.abs(error).sum()


def targets(y: np.ndarray, mode: str, n_classes: int, dtype) -> np.ndarray:
    """A loss's targets in ``dtype``: "value" (y itself), "sign" (2·y − 1) or "one_hot"."""
    return generic.targets(y, mode, n_classes, dtype, np)


def gather_rows(src: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``src[index]``: the rows of ``src`` that ``index`` picks (the loader's shuffle)."""
    return src[index]


def launch_counts() -> None:
    """NumPy launches nothing: None (the CUDA module counts its kernels and GEMMs)."""
    return None


def sum_axes(a: np.ndarray, axes: tuple, scale: float | None = None) -> np.ndarray:
    """``a`` summed over ``axes`` (a bias gradient, a broadcast operand's gradient), times
    ``scale`` when given (a mean: the sum scaled by 1/n)."""
    out = a.sum(axis=axes)
    return out if scale is None else out * scale
