"""The GEMM seam's CUDA side: ``x @ y`` through cuBLAS by ctypes, and sums as a GEMM.

float32/float64 products of any transpose/stride layout (strided-batched for batches) go to
cuBLAS, which works while a CUDA graph is being captured; a sum over the leading or trailing
axes of a contiguous float array is a product with a ones vector, so it needs no CUB kernel
compiled. Reached as ``device.matmul`` and ``device.kernels.sum_axes`` on a GPU.
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np

from devgrad.backend import cublas, cuda_kernels, gemm
from devgrad.backend.cupy_import import module


# -- the GEMM seam ---------------------------------------------------------------------------

GEMM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def current_stream() -> int:
    """The handle of CuPy's current stream (0: the default stream)."""
    return module().cuda.get_current_stream().ptr


def device_index(array) -> int:
    return array.device.id


def capturing() -> bool:
    """True while CuPy's current stream is recording a CUDA graph."""
    return bool(module().cuda.get_current_stream().is_capturing())


def plan(x, y):
    """The GEMM plan for 2-D-or-more x @ y, making an operand contiguous when its layout cannot
    be passed to cuBLAS as it is (a copy: a kernel, so capturable too)."""
    found = _layout_plan(x.shape, x.strides, y.shape, y.strides, x.itemsize)
    if found is not None:
        return found, x, y
    cp = module()
    x, y = cp.ascontiguousarray(x), cp.ascontiguousarray(y)
    found = _layout_plan(x.shape, x.strides, y.shape, y.strides, x.itemsize)
    if found is not None:
        return found, x, y
    # batch dimensions broadcast in a way no single stride walks: materialise them
    batch = gemm.result_shape(x.shape, y.shape)[:-2]
    x = cp.ascontiguousarray(cp.broadcast_to(x, (*batch, *x.shape[-2:])))
    y = cp.ascontiguousarray(cp.broadcast_to(y, (*batch, *y.shape[-2:])))
    found = _layout_plan(x.shape, x.strides, y.shape, y.strides, x.itemsize)
    if found is None:  # contiguous operands always have one
        raise RuntimeError(f"matmul: no cuBLAS layout for {x.shape} @ {y.shape}")
    return found, x, y


@functools.lru_cache(maxsize=1024)
def _layout_plan(x_shape: tuple, x_strides: tuple, y_shape: tuple, y_strides: tuple, itemsize: int):
    """``gemm.plan`` for operands with these shapes and byte strides, remembered: a training step
    asks for the same few layouts every time, and planning is pure Python on the host's time."""
    return gemm.plan(x_shape, tuple(s // itemsize for s in x_strides),
                     y_shape, tuple(s // itemsize for s in y_strides))


def matmul(x, y, precision: str | None = None, alpha: float = 1.0):
    """``x @ y`` with ``numpy.matmul``'s rules (times ``alpha``, a host number, when given).
    float32/float64 operands of one dtype go to cuBLAS through ctypes in any transpose/stride
    layout (strided-batched for batches), which works while a CUDA graph is being captured;
    anything else goes to ``cupy.matmul``, which cannot be captured (a clear error then).
    ``precision`` None: the process-wide setting."""
    cp = module()
    if x.dtype != y.dtype or x.dtype not in GEMM_DTYPES:
        if capturing():
            raise RuntimeError(f"matmul of {x.dtype} {x.shape} @ {y.dtype} {y.shape} cannot be captured into a CUDA "
                               "graph: only float32 or float64 operands of one dtype go through the capturable "
                               "cuBLAS path. Cast the operands first, e.g. .to(dg.float32)")
        out = cp.matmul(x, y)
        return out if alpha == 1.0 else out * alpha
    squeeze_rows, squeeze_cols = x.ndim == 1, y.ndim == 1
    if squeeze_rows:
        x = x[None, :]
    if squeeze_cols:
        y = y[:, None]
    if x.ndim > 2 and y.ndim == 2 and x.flags.c_contiguous:
        # a batch of rows times one matrix (Linear on 3-D input): one GEMM over all rows
        out = matmul(x.reshape(-1, x.shape[-1]), y, precision, alpha).reshape(*x.shape[:-1], y.shape[-1])
    else:
        out = _gemm(x, y, precision, cp, alpha)
    if squeeze_rows:
        out = out[..., 0, :]
    if squeeze_cols:
        out = out[..., 0]
    return out


def _gemm(x, y, precision, cp, alpha=1.0, out=None):
    """x @ y (2-D or more) into ``out`` (a C-contiguous array of the result's shape), or a new array."""
    shape = (x.shape[0], y.shape[1]) if x.ndim == 2 == y.ndim else gemm.result_shape(x.shape, y.shape)
    if out is None:
        out = cp.empty(shape, dtype=x.dtype)
    if out.size == 0:
        return out
    if x.shape[-1] == 0:  # an empty sum
        out.fill(0)
        return out
    found, x, y = plan(x, y)
    cublas.gemm(found, x.itemsize, cuda_kernels.address(y), cuda_kernels.address(x), cuda_kernels.address(out),
                index=device_index(out), stream=current_stream(), precision=precision, alpha=alpha)
    return out


# -- sums without CUB: a GEMM with a ones vector ------------------------------------------------
# CuPy's default sum goes through CUB, whose kernels take seconds to compile on a fresh machine;
# a sum over the leading (or trailing) axes of a contiguous float array is a product with a
# ones vector: cuBLAS (nothing to compile, capturable) at memory bandwidth, in full float32
# (never TF32: the ones are exact, the data must stay so too).

_ONES_KEEP = 16
_ones: dict = {}  # (device id, dtype, length) -> a ones vector
# While a graph is being recorded, the ones vectors it reads, so that the graph keeps them alive:
# one dropped from the cache later must not have its memory handed to anyone else (a replay
# would read it). None when nothing is being recorded.
_recording: list | None = None


def _ones_vector(n: int, dtype):
    key = (cuda_kernels.current_device(), np.dtype(dtype), n)
    ones = _ones.get(key)
    if ones is None:
        ones = cuda_kernels.full(n, 1.0, dtype)
        # One made while a graph is recorded is the graph's alone (kept below): its memory comes
        # from the graph's pool and its fill runs only on replays, so an eager sum reading it from
        # the cache would see it unfilled, and once the graph is gone, freed.
        if not capturing():
            if len(_ones) >= _ONES_KEEP:
                _ones.pop(next(iter(_ones)))
            _ones[key] = ones
    if _recording is not None:
        _recording.append(ones)
    return ones


@contextlib.contextmanager
def keep_alive_for_graph():
    """``with keep_alive_for_graph() as kept:`` around a capture: ``kept`` then holds every
    cached array the captured kernels read (the graph's owner keeps it as long as the graph)."""
    global _recording
    previous, _recording = _recording, []
    try:
        yield _recording
    finally:
        _recording = previous


def sum_axes(a, axes: tuple, scale: float | None = None):
    """``a`` summed over ``axes`` (times ``scale`` when given: a mean is a sum scaled by 1/n): a
    GEMM with a ones vector, the scale its alpha, when the axes are the leading or the trailing
    ones of a contiguous float32/float64 array, else CuPy's sum."""
    nd = a.ndim
    order = sorted({ax % nd for ax in axes}) if nd else []
    k = len(order)
    alpha = 1.0 if scale is None else float(scale)
    if a.dtype in GEMM_DTYPES and a.size and k and a.flags.c_contiguous:
        shape = a.shape
        cp = module()
        # The result is a fresh array the GEMM writes into (not a view of a 2-D product): a
        # gradient that owns its memory is stored as it is, where a view would be copied.
        if order == list(range(k)):  # leading axes: ones(1, m) @ a(m, rest)
            m = math.prod(shape[:k])
            out = cp.empty(shape[k:], dtype=a.dtype)
            _gemm(_ones_vector(m, a.dtype).reshape(1, m), a.reshape(m, -1), "highest", cp, alpha,
                  out=out.reshape(1, -1))
            return out
        if order == list(range(nd - k, nd)):  # trailing axes: a(rest, m) @ ones(m, 1)
            m = math.prod(shape[nd - k:])
            out = cp.empty(shape[:nd - k], dtype=a.dtype)
            _gemm(a.reshape(-1, m), _ones_vector(m, a.dtype).reshape(m, 1), "highest", cp, alpha,
                  out=out.reshape(-1, 1))
            return out
    out = module().sum(a, axis=tuple(order))
    return out if scale is None else out * scale
