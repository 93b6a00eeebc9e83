"""``dg.linalg``: NumPy's ``numpy.linalg`` functions on tensors, differentiable to any order.

    import devgrad as dg
    w, v = dg.linalg.eigh(a)          # also inv, pinv, solve, det, slogdet, cholesky, svd, qr,
    x = dg.linalg.solve(a, b)         # norm, matrix_power, lstsq (NumPy's arguments and results)

The ops live in devgrad/ops (linalg_solve, linalg_decomp, linalg_norm); this module only names
them, as ``numpy.linalg`` does. docs/numpy.md gives the gradient conventions.
"""

from devgrad.ops.linalg import matmul
from devgrad.ops.linalg_decomp import EighResult, QRResult, SVDResult, cholesky, eigh, lstsq, qr, svd
from devgrad.ops.linalg_norm import norm
from devgrad.ops.linalg_solve import SlogdetResult, det, inv, matrix_power, pinv, slogdet, solve

__all__ = [
    "EighResult", "QRResult", "SVDResult", "SlogdetResult", "cholesky", "det", "eigh", "inv", "lstsq", "matmul",
    "matrix_power", "norm", "pinv", "qr", "slogdet", "solve", "svd",
]
