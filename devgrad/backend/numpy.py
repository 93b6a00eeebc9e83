"""The CPU device module: NumPy arrays in host memory.

It satisfies ``devgrad.backend.protocol.DeviceModule`` as a module (there is one CPU: nothing
here takes a device index); ``devgrad.backend.cupy`` is the CUDA one. The CPU's primitive
kernels are in ``cpu_kernels``; the layers above register their own (``devgrad.backend.registry``).
"""

from __future__ import annotations

import contextlib
import gc
import resource
import sys
import tracemalloc
from types import ModuleType

import numpy as np

NAME = "cpu"
SUPPORTS_GRAPHS = False  # no CUDA graphs to capture a step into
HOST_READS_ARE_FREE = True  # reading a value back to Python costs no device sync
IS_HOST = True  # host NumPy arrays are this device's own arrays
# The in-place NumPy chains of sgd_update/adam_update go through a scratch buffer.
UPDATES_NEED_SCRATCH = True


def open_device(index: int) -> ModuleType:
    """This module: the CPU needs no per-device state (``index`` is 0, or a test's stand-in)."""
    return sys.modules[__name__]


def array_module() -> ModuleType:
    return np


def activate() -> contextlib.AbstractContextManager:
    """Nothing to make current on the CPU."""
    return contextlib.nullcontext()


def to_device(array) -> np.ndarray:
    """A host array (no copy when it already is a NumPy array)."""
    return np.asarray(array)


def to_host(array) -> np.ndarray:
    """A host array as it is."""
    return np.asarray(array)


def copy(array) -> np.ndarray:
    """A copy of an array of this device."""
    return array.copy()


def holds(array) -> bool:
    """True for arrays of this device: NumPy arrays."""
    return isinstance(array, np.ndarray)


matmul = np.matmul  # the GEMM seam on the CPU is NumPy's own (no wrapper: it is on every step's hot path)


def generator(seed: int) -> np.random.Generator:
    """NumPy's seeded generator."""
    return np.random.default_rng(seed)


def uniform(gen: np.random.Generator, shape, dtype, half_open: bool = True) -> np.ndarray:
    """Uniform draws in [0, 1) (NumPy's are, whatever ``half_open`` allows)."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return gen.random(shape, dtype=dtype)
    return gen.random(shape).astype(dtype)


def capture(fn):
    """Refused: the CPU has no CUDA graphs."""
    raise RuntimeError("CUDA graphs need a GPU; the CPU has none (check device.supports_graphs first)")


def synchronize() -> None:
    """NumPy work is synchronous: nothing to wait for."""


def memory_info() -> dict:
    """Peak resident memory of this process in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return {"peak_rss_bytes": peak if sys.platform == "darwin" else peak * 1024}


def peak_bytes(fn) -> int:
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


def architecture() -> str | None:
    """The GPU architecture kernels are compiled for: none on the CPU."""
    return None


def description() -> str:
    """What ``devgrad info`` calls this device."""
    return "cpu (NumPy)"


def launch(name: str, *args):
    """Refused: the CPU compiles no kernel sources; its kernels are NumPy functions, registered
    by name (``devgrad.backend.register_kernel``) and found as ``device.kernels.<name>``."""
    raise NotImplementedError(f"the CPU launches no compiled kernels (asked for {name!r}); "
                              "register a NumPy function for it with devgrad.backend.register_kernel")
