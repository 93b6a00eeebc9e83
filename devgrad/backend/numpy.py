"""The CPU device module: NumPy arrays in host memory.

Every device module (this one, ``devgrad.backend.cupy``) has the same functions and
constants, and ``Device`` only delegates to its module: adding a device is adding a module.
"""

from __future__ import annotations

import contextlib
import gc
import resource
import sys
import tracemalloc

import numpy as np

from devgrad.backend import cpu_kernels as kernels

NAME = "cpu"
SUPPORTS_GRAPHS = False  # no CUDA graphs to capture a step into
HOST_READS_ARE_FREE = True  # reading a value back to Python costs no device sync
IS_HOST = True  # host NumPy arrays are this device's own arrays
# The in-place NumPy chains of sgd_update/adam_update go through a scratch buffer.
UPDATES_NEED_SCRATCH = True

__all__ = ["kernels"]


def array_module():
    return np


def activate(index: int):
    """Nothing to make current on the CPU."""
    return contextlib.nullcontext()


def to_device(array, index: int) -> np.ndarray:
    """A host array (no copy when it already is a NumPy array)."""
    return np.asarray(array)


def to_host(array) -> np.ndarray:
    return np.asarray(array)


def copy(array, index: int) -> np.ndarray:
    """A copy of an array of this device."""
    return array.copy()


def holds(array, index: int) -> bool:
    """True for arrays of this device: NumPy arrays."""
    return isinstance(array, np.ndarray)


matmul = np.matmul  # the GEMM seam on the CPU is NumPy's own (no wrapper: it is on every step's hot path)


def generator(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def uniform(gen: np.random.Generator, shape, dtype, index: int, half_open: bool = True) -> np.ndarray:
    """Uniform draws in [0, 1) (NumPy's are, whatever ``half_open`` allows)."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return gen.random(shape, dtype=dtype)
    return gen.random(shape).astype(dtype)


def capture(fn, index: int):
    raise RuntimeError("CUDA graphs need a GPU; the CPU has none (check device.supports_graphs first)")


def synchronize(index: int) -> None:
    """NumPy work is synchronous: nothing to wait for."""


def memory_info(index: int) -> dict:
    """Peak resident memory of this process in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return {"peak_rss_bytes": peak if sys.platform == "darwin" else peak * 1024}


def peak_bytes(fn, index: int) -> int:
    """Extra host bytes allocated at the peak of one call of ``fn`` (NumPy reports to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return max(tracemalloc.get_traced_memory()[1] - base, 0)
    finally:
        tracemalloc.stop()


def architecture(index: int) -> str | None:
    """The GPU architecture kernels are compiled for: none on the CPU."""
    return None


def description(index: int) -> str:
    return "cpu (NumPy)"
