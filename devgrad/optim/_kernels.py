"""The optimizers' update kernels, registered per device kind for ``devgrad.optim``.

The CPU's are chains of in-place NumPy calls through a scratch buffer, defined here; CUDA's
(``devgrad.optim._cuda_kernels``, imported when a GPU first runs one) update every parameter
of a group in one launch. The ``*_many`` functions take a whole group; NumPy loops over it.
"""

from __future__ import annotations

import numpy as np

from devgrad.backend import register_kernel
from devgrad.backend.cpu_kernels import CACHE_PIECE_BYTES


def _weak(value, like: np.ndarray):
    """A capturable optimizer's 0-d (float64) learning-rate factor in ``like``'s dtype, so that it
    scales ``like`` exactly as the Python float of a non-capturable optimizer does (NumPy rounds a
    Python float to the array's dtype; a float64 array would make the product float64)."""
    if isinstance(value, np.ndarray | np.generic) and value.dtype != like.dtype:
        return value.astype(like.dtype)
    return value


def _rate(lr, p: np.ndarray):
    """``lr`` as plain SGD's ufuncs take it for ``p``: a Python float as a 0-d array of p's dtype
    (rounded as NumPy rounds it on each call, once instead of per parameter), when p is a plain
    host float array; anything else (a recording's traced arrays, a capturable 0-d rate) by ``_weak``."""
    if type(lr) is float and type(p) is np.ndarray and p.dtype.kind == "f":
        return np.asarray(lr, p.dtype)
    return _weak(lr, p)


def bias_power(beta: float, step):
    """βᵗ for Adam's bias corrections, the same bits whether ``step`` is a number or (capturable)
    a 0-d float64 array: NumPy's power of a 0-d count in both cases. Python's ``**`` (the C
    library's pow) and NumPy's power (SIMD loops of its own where the CPU has them, AVX-512) can
    differ by an ulp, and an update must not depend on where its count is kept."""
    return np.power(beta, step if isinstance(step, np.ndarray) else np.float64(step))


def _pair(tmp):
    """The scratch buffers an update was given: one array, or a pair when it needs two (a second one
    is made here when a caller passed only one)."""
    if isinstance(tmp, tuple):
        return tmp
    return tmp, None


def _effective_grad(g, p, weight_decay, maximize, out):
    """The gradient the update follows: −g when maximizing, plus weight_decay·p, written into ``out``
    (``g`` itself, untouched, when neither applies). Bitwise the old ``g = -g; g = g + wd·p``:
    IEEE addition commutes, and x − g is x + (−g)."""
    if weight_decay:
        np.multiply(p, weight_decay, out=out)
        if maximize:
            out -= g
        else:
            out += g
        return out
    if maximize:
        return np.negative(g, out=out)
    return g


def sgd_update(p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize, first) -> None:
    """PyTorch's SGD on one parameter, in place: buf ← momentum·buf + (1 − dampening)·g
    (buf ← g on the ``first`` step), p ← p − lr·(g + momentum·buf if nesterov else buf).

    Every temporary goes through the scratch ``tmp`` (a pair of buffers when maximizing or
    decaying with Nesterov momentum): two passes over p-sized arrays for plain SGD.
    """
    tmp, second = _pair(tmp)
    rate = _weak(lr, p)
    if buf is None:
        d = _effective_grad(g, p, weight_decay, maximize, tmp)
        np.multiply(d, rate, out=tmp)
    else:
        if (weight_decay or maximize) and nesterov and second is None:
            second = np.empty_like(p)
        d = _effective_grad(g, p, weight_decay, maximize, second if nesterov else tmp)
        sgd_momentum_step(d, buf, tmp, rate, momentum, dampening, nesterov, first)
    p -= tmp


def sgd_momentum_step(d, buf, tmp, rate, momentum, dampening, nesterov, first) -> None:
    """SGD's momentum update of ``buf`` from the followed gradient ``d`` (``tmp`` only when ``d``
    is not ``tmp`` itself, which Nesterov needs), and the step lr·(d + momentum·buf or buf) into
    ``tmp``: elementwise, so one call over many parameters' concatenated arrays gives each
    element what its own parameter's update gives it."""
    if first:
        np.copyto(buf, d)
    else:
        buf *= momentum
        if dampening:
            np.multiply(d, 1.0 - dampening, out=tmp)
            buf += tmp
        else:  # d·1.0 is d, bit for bit
            buf += d
    if nesterov:
        np.multiply(buf, momentum, out=tmp)
        tmp += d
        tmp *= rate
    else:
        np.multiply(buf, rate, out=tmp)


def adam_update(p, g, m, v, vmax, tmp, lr, step, b1, b2, eps, weight_decay, decoupled, maximize) -> None:
    """Adam/AdamW (AMSGrad when ``vmax`` is given) on one parameter, in place; every temporary
    goes through the scratch ``tmp`` (a pair of buffers when maximizing or with L2 decay).
    ``lr`` and ``step`` may be numbers or 0-d arrays."""
    tmp, second = _pair(tmp)
    if weight_decay and decoupled:
        p *= _weak(1.0 - lr * weight_decay, p)
        weight_decay = 0.0
    if (weight_decay or maximize) and second is None:
        second = np.empty_like(p)
    g = _effective_grad(g, p, weight_decay, maximize, second)
    v = adam_moments(g, m, v, vmax, tmp, b1, b2)
    bias1 = 1.0 - bias_power(b1, step)
    bias2_sqrt = np.sqrt(1.0 - bias_power(b2, step))
    np.sqrt(v, out=tmp)
    tmp /= bias2_sqrt
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= _weak(lr / bias1, tmp)
    p -= tmp



def adam_moments(g, m, v, vmax, tmp, b1: float, b2: float):
    """Adam's moving averages from the followed gradient ``g``, in place: m ← β₁m + (1 − β₁)g,
    v ← β₂v + (1 − β₂)g² (through the scratch ``tmp``), and with AMSGrad vmax ← max(vmax, v).
    Returns the second moment the step divides by (``vmax`` with AMSGrad, else ``v``).
    Elementwise: one call over many parameters' concatenated arrays gives each element what its
    own parameter's update gives it."""
    m *= b1
    np.multiply(g, 1.0 - b1, out=tmp)
    m += tmp
    v *= b2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - b2
    v += tmp
    if vmax is not None:
        np.maximum(vmax, v, out=vmax)
        return vmax
    return v

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
    """``sgd_update`` for each item (p, g, momentum buffer or None, scratch, first); plain SGD (the
    common case) as two in-place calls per parameter, the learning rate cast once per dtype."""
    if momentum or weight_decay or maximize:
        for p, g, buf, tmp, first in items:
            sgd_update(p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize, first)
        return
    rates: dict = {}
    multiply = np.multiply
    for p, g, _, tmp, _ in items:
        rate = rates.get(p.dtype)
        if rate is None:
            rate = rates[p.dtype] = _rate(lr, p)
        if isinstance(tmp, tuple):
            tmp = tmp[0]
        if p.size > _PIECE_BYTES // p.itemsize and type(p) is np.ndarray and _in_pieces(p, g, tmp):
            _sgd_pieces(p, g, rate, tmp)
            continue
        multiply(g, rate, out=tmp)
        p -= tmp


_PIECE_BYTES = CACHE_PIECE_BYTES  # a piece of a large parameter's plain SGD update


def _in_pieces(p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> bool:
    """Whether the update can go piece by piece: a gradient and a scratch laid out as the parameter."""
    return g.shape == p.shape == tmp.shape and p.flags.c_contiguous and g.flags.c_contiguous and tmp.flags.c_contiguous


def _sgd_pieces(p: np.ndarray, g: np.ndarray, rate, tmp: np.ndarray) -> None:
    """p -= rate·g piece by piece through the head of the scratch: each piece of the scaled gradient
    is subtracted while it is still in the cache (a whole scaled gradient is written out to memory
    and read back). Elementwise, so the bits are the whole update's."""
    n = _PIECE_BYTES // p.itemsize
    flat_p, flat_g, head = p.reshape(-1), g.reshape(-1), tmp.reshape(-1)[:n]
    for lo in range(0, flat_p.size, n):
        part, scaled = flat_p[lo:lo + n], head[:min(n, flat_p.size - lo)]
        np.multiply(flat_g[lo:lo + n], rate, out=scaled)
        np.subtract(part, scaled, out=part)


def rmsprop_update_many(items, lr, alpha, eps, weight_decay, momentum, centered, maximize) -> None:
    """RMSprop, as PyTorch's, for each item (p, g, square_avg, momentum buffer or None, grad_avg
    or None[, scratch]), in place; the temporaries go through the scratch (a pair of buffers when
    maximizing or decaying), made here when an item has none."""
    for item in items:
        p, grad, sq, buf, ga = item[:5]
        tmp, second = _pair(item[5]) if len(item) > 5 else (np.empty_like(p), None)
        if (weight_decay or maximize) and second is None:
            second = np.empty_like(p)
        g = _effective_grad(grad, p, weight_decay, maximize, second)
        sq *= alpha
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - alpha
        sq += tmp
        if centered:
            ga *= alpha
            np.multiply(g, 1.0 - alpha, out=tmp)
            ga += tmp
            np.multiply(ga, ga, out=tmp)
            np.subtract(sq, tmp, out=tmp)
            np.sqrt(tmp, out=tmp)
        else:
            np.sqrt(sq, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)
        rate = _weak(lr, p)
        if momentum > 0:
            buf *= momentum
            buf += tmp
            np.multiply(buf, rate, out=tmp)
        else:
            tmp *= rate
        p -= tmp


def adagrad_update_many(items, lr, lr_decay, weight_decay, eps, maximize) -> None:
    """Adagrad, as PyTorch's, for each item (p, g, sum of squared gradients, step count: already
    advanced[, scratch]), in place, through the scratch as RMSprop's."""
    for item in items:
        p, grad, total, step = item[:4]
        tmp, second = _pair(item[4]) if len(item) > 4 else (np.empty_like(p), None)
        if (weight_decay or maximize) and second is None:
            second = np.empty_like(p)
        g = _effective_grad(grad, p, weight_decay, maximize, second)
        clr = _weak(lr / (1.0 + (step - 1) * lr_decay), p)
        np.multiply(g, g, out=tmp)
        total += tmp
        np.sqrt(total, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)
        tmp *= clr
        p -= tmp


KERNELS = ("sgd_update", "adam_update", "increment_steps", "adam_update_many", "sgd_update_many",
           "rmsprop_update_many", "adagrad_update_many")
for _name in KERNELS:
    register_kernel(_name, "cpu", globals()[_name])
    register_kernel(_name, "cuda", "devgrad.optim._cuda_kernels")
