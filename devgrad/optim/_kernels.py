"""The optimizers' update kernels, registered per device kind for ``devgrad.optim``.

The CPU's are chains of in-place NumPy calls through a scratch buffer, defined here; CUDA's
(``devgrad.optim._cuda_kernels``, imported when a GPU first runs one) update every parameter
of a group in one launch. The ``*_many`` functions take a whole group; NumPy loops over it.
"""

from __future__ import annotations

import numpy as np

from devgrad.backend import register_kernel


def _weak(value, like: np.ndarray):
    """A capturable optimizer's 0-d (float64) learning-rate factor in ``like``'s dtype, so that it
    scales ``like`` exactly as the Python float of a non-capturable optimizer does (NumPy rounds a
    Python float to the array's dtype; a float64 array would make the product float64)."""
    if isinstance(value, np.ndarray | np.generic) and value.dtype != like.dtype:
        return value.astype(like.dtype)
    return value


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
    np.multiply(g, _weak(lr, tmp), out=tmp)
    p -= tmp


def adam_update(p, g, m, v, vmax, tmp, lr, step, b1, b2, eps, weight_decay, decoupled, maximize) -> None:
    """Adam/AdamW (AMSGrad when ``vmax`` is given) on one parameter, in place; every temporary
    goes through ``tmp``. ``lr`` and ``step`` may be numbers or 0-d arrays."""
    if maximize:
        g = -g
    if weight_decay:
        if decoupled:
            p *= _weak(1.0 - lr * weight_decay, p)
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
    tmp *= _weak(lr / bias1, tmp)
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
        rate = _weak(lr, p)
        if momentum > 0:
            buf *= momentum
            buf += g / avg
            p -= rate * buf
        else:
            p -= rate * (g / avg)


def adagrad_update_many(items, lr, lr_decay, weight_decay, eps, maximize) -> None:
    """Adagrad, as PyTorch's, for each item (p, g, sum of squared gradients, step count: already
    advanced), in place."""
    for p, grad, total, step in items:
        g = -grad if maximize else grad
        if weight_decay:
            g = g + weight_decay * p
        clr = _weak(lr / (1.0 + (step - 1) * lr_decay), p)
        total += g * g
        std = np.sqrt(total)
        std += eps
        p -= clr * (g / std)


KERNELS = ("sgd_update", "adam_update", "increment_steps", "adam_update_many", "sgd_update_many",
           "rmsprop_update_many", "adagrad_update_many")
for _name in KERNELS:
    register_kernel(_name, "cpu", globals()[_name])
    register_kernel(_name, "cuda", "devgrad.optim._cuda_kernels")
