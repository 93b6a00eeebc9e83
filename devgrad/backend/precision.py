"""The process-wide float32 matmul precision (``set_float32_matmul_precision``), kept apart from
the cuBLAS binding that reads it so that setting it loads no CUDA code."""

from __future__ import annotations

PRECISIONS = ("highest", "high")  # highest: true float32; high: TF32 tensor cores for float32
_precision = ["highest"]


def set_precision(precision: str) -> None:
    """Set how float32 GEMMs are computed from now on: "highest" or "high" (TF32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"float32 matmul precision must be one of {', '.join(map(repr, PRECISIONS))}, "
                         f"got {precision!r}")
    _precision[0] = precision


def precision() -> str:
    """The current float32 matmul precision."""
    return _precision[0]


def set_float32_matmul_precision(precision: str) -> None:
    """How float32 matrix products are computed on GPUs, as in PyTorch: ``"highest"`` (default)
    is true float32; ``"high"`` lets cuBLAS use TF32 tensor cores (about 10 mantissa bits per
    product, float32 accumulation: several times faster on large GEMMs of Ampere and later GPUs,
    relative errors near 1e-3 instead of 1e-6). float64 and the CPU are unaffected."""
    set_precision(precision)


def get_float32_matmul_precision() -> str:
    """The current float32 matmul precision ("highest" or "high")."""
    return precision()
