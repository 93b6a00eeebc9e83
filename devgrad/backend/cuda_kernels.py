"""CUDA's fused kernels, launched through CuPy, and the GEMM seam's CUDA side.

Reached as ``device.kernels.<name>`` on a GPU; ``devgrad.backend.cpu_kernels`` has the same
functions for the CPU. The kernel bodies are in ``cuda_sources``.

One elementwise kernel where NumPy needs a chain of in-place calls: on a GPU each call is a
launch (several microseconds of host time) and a pass over memory. Scalars that change from
step to step (lr, the Adam step count) are parameters that take a number or a 0-d device
array alike, so the same kernel serves eager steps and steps captured in a CUDA graph (which
must read them from device memory). Arithmetic is in double and rounded once to T. Every
array bound to a ``T`` placeholder is first cast to one dtype: CuPy, unlike NumPy, does not
promote there.
"""

from __future__ import annotations

import numpy as np

from devgrad.backend import cublas, gemm, generic
from devgrad.backend.cuda_sources import ELEMENTWISE
from devgrad.backend.cupy_import import module


def scatter_add(target, index, values) -> None:
    """target[index] += values, accumulating repeated indices (atomic adds on the GPU)."""
    import cupyx  # noqa: PLC0415 - part of the optional CuPy, present when this runs

    cupyx.scatter_add(target, index, values)


_compiled: dict = {}


def kernel(name: str):
    """The CuPy ElementwiseKernel ``name`` of ``ELEMENTWISE`` (built once, compiled on first launch)."""
    k = _compiled.get(name)
    if k is None:
        in_params, out_params, body = ELEMENTWISE[name]
        k = _compiled[name] = module().ElementwiseKernel(in_params, out_params, body, f"devgrad_{name}")
    return k


def sigmoid(x):
    return kernel("sigmoid")(x)


def act_grad(act: str, g, y):
    if g.dtype != y.dtype:  # a kernel's T-typed arrays must share one dtype
        g = g.astype(y.dtype)
    return kernel(f"{act}_grad")(g, y)


def bias_act_(out, bias, act: str):
    if bias is None:
        bias = module().zeros((), dtype=out.dtype)
    elif bias.dtype != out.dtype:
        bias = bias.astype(out.dtype)
    kernel(f"bias_{act}")(bias, out)
    return out


def bce_logits(z, y):
    # one dtype per T placeholder: the targets take the logits' dtype (NumPy would promote)
    return kernel("bce_logits")(z, y.astype(z.dtype, copy=False))


def bce_logits_grad(z, y, g, scale):
    per_element = scale is None
    return kernel("bce_logits_grad")(z, y.astype(z.dtype, copy=False), g.astype(z.dtype, copy=False),
                                     1.0 if per_element else scale, int(per_element))


# Above this many classes a row is too long for one thread: the vectorised form (a few more
# launches, each using the whole GPU) is faster.
ROW_KERNEL_MAX_CLASSES = 1024


def softmax_xent(z, labels, smoothing: float):
    cp = module()
    n, c = z.shape
    if c > ROW_KERNEL_MAX_CLASSES:
        return generic.softmax_xent(z, labels, smoothing, cp)
    loss = cp.empty(n, dtype=z.dtype)
    probs = cp.empty(z.shape, dtype=z.dtype)
    kernel("softmax_xent")(z, labels.astype(np.int64, copy=False), c, smoothing, loss, probs)
    return loss, probs


def softmax_xent_grad(probs, labels, smoothing: float, g, scale):
    if probs.shape[1] > ROW_KERNEL_MAX_CLASSES:
        return generic.softmax_xent_grad(probs, labels, smoothing, g, scale, module())
    per_row = scale is None
    return kernel("softmax_xent_grad")(probs, labels.astype(np.int64, copy=False), g.astype(probs.dtype, copy=False),
                                       probs.shape[1], smoothing, 1.0 if per_row else scale, int(per_row))


def sgd_update(p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize, first) -> None:
    if buf is None:
        kernel("sgd")(g, lr, weight_decay, int(maximize), p)
    else:
        kernel("sgd_momentum")(g, lr, momentum, dampening, weight_decay, int(nesterov), int(maximize),
                               int(first), p, buf)


def adam_update(p, g, m, v, vmax, tmp, lr, step, b1, b2, eps, weight_decay, decoupled, maximize) -> None:
    args = (g, lr, step, b1, b2, eps, weight_decay, int(decoupled), int(maximize), p, m, v)
    if vmax is None:
        kernel("adam")(*args)
    else:
        kernel("adam_amsgrad")(*args, vmax)


# -- the GEMM seam ---------------------------------------------------------------------------

GEMM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def address(array) -> int:
    """The device address of an array's first element."""
    return array.data.ptr


def current_stream() -> int:
    """The handle of CuPy's current stream (0: the default stream)."""
    return module().cuda.get_current_stream().ptr


def device_index(array) -> int:
    return array.device.id


def capturing() -> bool:
    """True while CuPy's current stream is recording a CUDA graph."""
    return bool(module().cuda.get_current_stream().is_capturing())


def _plan(x, y):
    """The GEMM plan for 2-D-or-more x @ y, making an operand contiguous when its layout cannot
    be passed to cuBLAS as it is (a copy: a kernel, so capturable too)."""
    cp = module()
    for attempt in range(3):
        found = gemm.plan(x.shape, _element_strides(x), y.shape, _element_strides(y))
        if found is not None:
            return found, x, y
        if attempt == 0:
            x, y = cp.ascontiguousarray(x), cp.ascontiguousarray(y)
        else:  # batch dimensions broadcast in a way no single stride walks: materialise them
            batch = gemm.result_shape(x.shape, y.shape)[:-2]
            x = cp.ascontiguousarray(cp.broadcast_to(x, (*batch, *x.shape[-2:])))
            y = cp.ascontiguousarray(cp.broadcast_to(y, (*batch, *y.shape[-2:])))
    raise RuntimeError(f"matmul: no cuBLAS layout for {x.shape} @ {y.shape}")  # contiguous operands always have one


def _element_strides(array) -> tuple:
    size = array.itemsize
    return tuple(s // size for s in array.strides)


def matmul(x, y, precision: str | None = None):
    """``x @ y`` with ``numpy.matmul``'s rules. float32/float64 operands of one dtype go to cuBLAS
    through ctypes in any transpose/stride layout (strided-batched for batches), which works
    while a CUDA graph is being captured; anything else goes to ``cupy.matmul``, which cannot
    be captured (a clear error then). ``precision`` None: the process-wide setting."""
    cp = module()
    if x.dtype != y.dtype or x.dtype not in GEMM_DTYPES:
        if capturing():
            raise RuntimeError(f"matmul of {x.dtype} {x.shape} @ {y.dtype} {y.shape} cannot be captured into a CUDA "
                               "graph: only float32 or float64 operands of one dtype go through the capturable "
                               "cuBLAS path. Cast the operands first, e.g. .to(dg.float32)")
        return cp.matmul(x, y)
    squeeze_rows, squeeze_cols = x.ndim == 1, y.ndim == 1
    if squeeze_rows:
        x = x[None, :]
    if squeeze_cols:
        y = y[:, None]
    if x.ndim > 2 and y.ndim == 2 and x.flags.c_contiguous:
        # a batch of rows times one matrix (Linear on 3-D input): one GEMM over all rows
        out = matmul(x.reshape(-1, x.shape[-1]), y, precision).reshape(*x.shape[:-1], y.shape[-1])
    else:
        out = _gemm(x, y, precision, cp)
    if squeeze_rows:
        out = out[..., 0, :]
    if squeeze_cols:
        out = out[..., 0]
    return out


def _gemm(x, y, precision, cp):
    shape = gemm.result_shape(x.shape, y.shape)
    out = cp.empty(shape, dtype=x.dtype)
    if out.size == 0:
        return out
    if x.shape[-1] == 0:  # an empty sum
        out.fill(0)
        return out
    found, x, y = _plan(x, y)
    cublas.gemm(found, x.itemsize, address(y), address(x), address(out), index=device_index(out),
                stream=current_stream(), precision=precision)
    return out
