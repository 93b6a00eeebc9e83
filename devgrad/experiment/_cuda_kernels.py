"""The training loop's device kernels on CUDA devices (the epoch sums in one launch each, a loss's
targets in one launch), launched through ``devgrad.backend.cuda_kernels``. Registered by
``devgrad.experiment._kernels``; same functions and signatures as the CPU's there."""

from __future__ import annotations

import math

import numpy as np

from devgrad.backend import cublas, cuda_gemm
from devgrad.backend import cuda_kernels as cuda
from devgrad.experiment._kernels import targets_xp


def class_sums(z, labels, loss, weight: float, threshold: float, loss_sum, hits) -> None:
    """Add a classification batch to its epoch's device sums, in one launch: ``hits`` (0-d
    int64) += rows whose prediction from the outputs ``z`` (n, cols) is their label (argmax; for
    one output, z > threshold); ``loss_sum`` (0-d float64) += ``loss`` (0-d) × ``weight``."""
    ctype = cuda.CTYPE.get(np.dtype(z.dtype))
    if ctype is None:
        raise TypeError(f"class_sums: outputs of dtype {z.dtype}: the kernel takes float32 or float64")
    if loss_sum.dtype != np.float64 or hits.dtype != np.int64:
        raise TypeError(f"class_sums: the sums must be float64 and int64, got {loss_sum.dtype} and {hits.dtype}")
    rows = int(z.shape[0])
    z = cuda.contiguous(z.reshape(rows, math.prod(z.shape[1:])))  # (rows, outputs)
    loss = cuda.module().asarray(loss, dtype=z.dtype)  # a 0-d array the kernel reads (as is when it already is)
    if rows:
        cuda.run_kernel("class_sums", ctype, rows, z, cuda.contiguous(labels.reshape(-1).astype(np.int64, copy=False)),
                        np.int32(z.shape[1]), np.float64(threshold), loss, np.float64(weight), loss_sum, hits)


def reg_sums(out, y, loss, weight: float, loss_sum, sse, sae) -> None:
    """Add a regression batch to its epoch's device sums (0-d float64): ``loss_sum`` += loss ×
    ``weight``, ``sse`` += Σ(out − y)², ``sae`` += Σ|out − y|. One kernel writes the errors and
    their signs (and adds the loss), two cuBLAS dot products add e·e and e·sign(e) into the sums:
    deterministic, and nothing for CuPy to compile."""
    ctype = cuda.CTYPE.get(np.dtype(out.dtype))
    if ctype is None or any(a.dtype != np.float64 for a in (loss_sum, sse, sae)):
        raise TypeError(f"reg_sums: float32/float64 outputs and float64 sums, got {out.dtype}, "
                        f"{loss_sum.dtype}, {sse.dtype}, {sae.dtype}")
    cp = cuda.module()
    out = cuda.contiguous(out.reshape(-1))
    n = out.size
    if not n:
        return
    y = cuda.contiguous(y.reshape(-1).astype(np.float64, copy=False))
    loss = cp.asarray(loss, dtype=out.dtype)
    e, s = cp.empty(n, dtype=np.float64), cp.empty(n, dtype=np.float64)
    cuda.run_kernel("reg_errors", ctype, n, out, y, loss, np.float64(weight), loss_sum, e, s)
    for other, total in ((e, sse), (s, sae)):
        found, row, column = cuda_gemm.plan(e.reshape(1, n), other.reshape(n, 1))
        cublas.gemm(found, 8, cuda.address(column), cuda.address(row), cuda.address(total),
                    index=cuda_gemm.device_index(total), stream=cuda_gemm.current_stream(), precision="highest",
                    beta=1.0)


TARGET_MODES = {"value": 0, "sign": 1, "one_hot": 2}


def targets(y, mode: str, n_classes: int, dtype):
    """A loss's targets in ``dtype`` from labels (int64) or values (float64), in one launch:
    ``mode`` "value" (y itself), "sign" (2·y − 1, the ±1 margin labels) or "one_hot" (rows of
    ``n_classes``). Other dtypes take CuPy's (and NumPy's) formula."""
    dtype = np.dtype(dtype)
    ctype = cuda.CTYPE.get(dtype)
    is_int = y.dtype == np.int64
    if ctype is None or not (is_int or y.dtype == np.float64) or (mode == "one_hot" and not is_int):
        return targets_xp(y, mode, n_classes, dtype, cuda.module())
    if mode == "value" and y.dtype == dtype:
        return y
    shape = (*y.shape, n_classes) if mode == "one_hot" else y.shape
    out = cuda.module().empty(shape, dtype=dtype)
    if out.size:
        cuda.run_kernel("targets", ctype, out.size, cuda.contiguous(y), np.int32(is_int), out,
                        np.int32(TARGET_MODES[mode]), np.int32(n_classes))
    return out
