"""The GEMM seam's layout mapping: a row-major NumPy ``a @ b`` as one column-major BLAS call.

BLAS (cuBLAS) multiplies column-major matrices: C = op(A)·op(B), with op = identity ('N')
or transpose ('T'), each matrix given by a pointer and a leading dimension (the distance
between columns). devgrad's arrays are row-major views with arbitrary strides: a weight,
its transpose ``w.T`` (same memory, strides swapped), a slice of rows. The trick is that a
row-major (M, N) result is, read column-major, its own transpose (N, M). So

    C = X @ Y   is computed as   Cᵀ = Yᵀ · Xᵀ   in column-major terms,

with Y's memory passed as BLAS's A and X's as BLAS's B. An operand whose rows are
contiguous (row-major storage) already *is* its transpose read column-major ('N'); one
whose columns are contiguous (``w.T``, column-major storage) is the matrix itself, and
BLAS transposes it ('T'). No copy is made in either case.

This module is pure Python on shapes and strides, shared by the CUDA backend (which passes
the plan to cuBLAS) and the tests (which run the same plan through a host implementation
of the column-major contract, so the mapping is checked without a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass

INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class GemmPlan:
    """Arguments of one (strided-batched) column-major GEMM computing row-major C = X @ Y.

    BLAS's A is Y's memory and B is X's (see the module doc). Leading dimensions and batch
    strides are in elements; ``batch`` is 1 for a single GEMM. C is a fresh C-contiguous
    array of shape ``(*batch_shape, M, N)``: ``ldc = N`` and ``stride_c = M·N``.
    """

    trans_a: bool  # apply BLAS's transpose to Y's memory
    trans_b: bool  # apply BLAS's transpose to X's memory
    m: int  # rows of op(A) and of Cᵀ: N, the result's columns
    n: int  # columns of op(B) and of Cᵀ: M, the result's rows
    k: int
    lda: int
    ldb: int
    ldc: int
    batch: int
    stride_a: int
    stride_b: int
    stride_c: int


def operand_layout(rows: int, cols: int, row_stride: int, col_stride: int):
    """How BLAS reads the transpose of a (rows, cols) row-major view with these element strides.

    Returns (transpose, leading_dimension), or None when neither the rows nor the columns are
    contiguous (the caller copies the operand then). A dimension of size 1 has no meaningful
    stride (NumPy and CuPy put anything there), so it never decides the layout.
    """
    if col_stride == 1 or cols == 1:
        # Rows contiguous: column-major, the memory is the (cols, rows) transpose itself.
        ld = row_stride if rows > 1 else cols
        if ld >= max(cols, 1) and (rows == 1 or row_stride > 0):
            return False, max(ld, 1)
    if row_stride == 1 or rows == 1:
        # Columns contiguous: column-major, the memory is the (rows, cols) matrix; BLAS transposes it.
        ld = col_stride if cols > 1 else rows
        if ld >= max(rows, 1) and (cols == 1 or col_stride > 0):
            return True, max(ld, 1)
    return None


def batch_stride(batch_shape: tuple, batch_strides: tuple):
    """One stride that walks every batch dimension of an operand in order, or None.

    ``batch_strides`` are the operand's strides over the broadcast batch shape (0 where it is
    broadcast). Dimensions of size 1 are skipped; all-broadcast gives 0.
    """
    dims = [(size, stride) for size, stride in zip(batch_shape, batch_strides) if size != 1]
    if not dims:
        return 0
    if all(stride == 0 for _, stride in dims):
        return 0
    # Innermost first: each outer stride must be the inner stride times the inner size.
    step = dims[-1][1]
    expected = step
    for size, stride in reversed(dims):
        if stride != expected:
            return None
        expected = stride * size
    return step


def plan(x_shape: tuple, x_strides: tuple, y_shape: tuple, y_strides: tuple):
    """The GEMM computing ``x @ y`` for operands of at least 2 dimensions, strides in elements.

    Batch dimensions broadcast as in ``numpy.matmul``. Returns a ``GemmPlan``, or None when
    an operand's layout cannot be passed to BLAS as it is (make it contiguous and ask again)
    or a size does not fit BLAS's 32-bit integers.
    """
    if len(x_shape) < 2 or len(y_shape) < 2:
        raise ValueError("gemm.plan: operands need at least two dimensions (promote 1-D operands first)")
    m, k = x_shape[-2:]
    k2, n = y_shape[-2:]
    if k != k2:
        raise ValueError(f"gemm.plan: inner dimensions differ: {x_shape} @ {y_shape}")
    batch_shape = _broadcast_batch(x_shape[:-2], y_shape[:-2])
    x_batch = _batch_strides(batch_shape, x_shape[:-2], x_strides[:-2])
    y_batch = _batch_strides(batch_shape, y_shape[:-2], y_strides[:-2])
    layout_a = operand_layout(k, n, y_strides[-2], y_strides[-1])  # Y read as Yᵀ: (n, k)
    layout_b = operand_layout(m, k, x_strides[-2], x_strides[-1])  # X read as Xᵀ: (k, m)
    if layout_a is None or layout_b is None:
        return None
    stride_a = batch_stride(batch_shape, y_batch)
    stride_b = batch_stride(batch_shape, x_batch)
    if stride_a is None or stride_b is None:
        return None
    batch = 1
    for size in batch_shape:
        batch *= size
    gemm = GemmPlan(trans_a=layout_a[0], trans_b=layout_b[0], m=n, n=m, k=k, lda=layout_a[1], ldb=layout_b[1],
                    ldc=max(n, 1), batch=batch, stride_a=stride_a, stride_b=stride_b, stride_c=m * n)
    if max(gemm.m, gemm.n, gemm.k, gemm.lda, gemm.ldb, gemm.ldc, gemm.batch) > INT32_MAX:
        return None
    return gemm


def result_shape(x_shape: tuple, y_shape: tuple) -> tuple:
    """Shape of ``x @ y`` for operands of at least 2 dimensions."""
    return (*_broadcast_batch(x_shape[:-2], y_shape[:-2]), x_shape[-2], y_shape[-1])


def _broadcast_batch(a: tuple, b: tuple) -> tuple:
    ndim = max(len(a), len(b))
    a = (1,) * (ndim - len(a)) + tuple(a)
    b = (1,) * (ndim - len(b)) + tuple(b)
    out = []
    for i, (p, q) in enumerate(zip(a, b)):
        if 1 not in (p, q) and p != q:
            raise ValueError(f"matmul: batch dimension {i} does not broadcast: {p} vs {q}")
        out.append(q if p == 1 else p)
    return tuple(out)


def _batch_strides(batch_shape: tuple, shape: tuple, strides: tuple) -> tuple:
    """An operand's strides over the broadcast batch shape: 0 where it is broadcast."""
    lead = len(batch_shape) - len(shape)
    out = [0] * lead
    for size, stride in zip(shape, strides):
        out.append(0 if size == 1 else stride)
    return tuple(out)
