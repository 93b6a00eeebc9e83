"""CuPy, imported lazily and defensively.

CuPy is optional. It is imported on first use, and any failure (not only ImportError:
a broken CUDA install can raise anything) is kept so that ``devgrad info`` and the error
raised when a user asks for ``cuda`` can say why the GPU is unavailable.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import sys
import threading
from pathlib import Path

INSTALL_HINT = (
    "install the CuPy extra that matches your CUDA toolkit: "
    "pip install cupy-cuda12x (CUDA 12.x) or cupy-cuda13x (CUDA 13.x): devgrad's cuda12 and cuda13 extras"
)

_lock = threading.Lock()
_state: dict = {}


# The CUDA driver's library per platform: CuPy sees no GPU without it. Loading it (or failing
# to) takes about a millisecond; importing CuPy takes 1-2 s, which a CPU-only run should not pay.
_DRIVER_LIBRARIES = {"linux": ("libcuda.so.1", "libcuda.so"), "win32": ("nvcuda.dll",)}


def _driver_missing() -> str | None:
    """Why no CUDA driver loads here, or None when one does (or the platform has no known name)."""
    names = _DRIVER_LIBRARIES.get(sys.platform)
    if not names:
        return None
    errors = []
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc))
        else:
            return None
    return f"the CUDA driver library did not load ({errors[0]})"


def _installed_version(spec) -> str:
    """CuPy's version read from its package without importing it ('?' when unreadable)."""
    try:
        text = (Path(spec.origin).parent / "_version.py").read_text()
    except (OSError, TypeError):
        return "?"
    found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", text)
    return found.group(1) if found else "?"


def _probe() -> dict:
    """Import CuPy and count devices once; remember the module or the reason it failed. Where
    CuPy is installed but no CUDA driver loads, CuPy is not imported at all (it could see no GPU)."""
    try:
        spec = importlib.util.find_spec("cupy")
    except (ImportError, ValueError):
        spec = None
    missing = _driver_missing() if spec is not None else None
    if missing is not None:
        version = _installed_version(spec)
        return {"module": None, "count": 0, "version": version,
                "reason": f"CuPy {version} is installed but no CUDA driver or GPU is usable: {missing}"}
    try:
        import cupy  # noqa: PLC0415 - optional dependency, imported on first use
    except ImportError as exc:
        return {"module": None, "count": 0, "version": None,
                "reason": f"CuPy is not installed ({exc}); {INSTALL_HINT}"}
    except Exception as exc:  # a broken CUDA install can raise anything at import
        return {"module": None, "count": 0, "version": None,
                "reason": f"CuPy failed to import: {type(exc).__name__}: {exc}"}
    version = getattr(cupy, "__version__", "?")
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:
        return {"module": None, "count": 0, "version": version,
                "reason": f"CuPy {version} is installed but no CUDA driver or GPU is usable: "
                          f"{type(exc).__name__}: {exc}"}
    if count == 0:
        return {"module": None, "count": 0, "version": version,
                "reason": f"CuPy {version} is installed but reports 0 CUDA devices"}
    return {"module": cupy, "count": count, "version": version, "reason": None,
            "accelerators": _plain_reductions(cupy)}


def _plain_reductions(cupy) -> str:
    """Turn CuPy's CUB accelerator off for reductions, unless the user chose with $CUPY_ACCELERATORS.

    CUB's sum kernels take 2-3 s each to compile on a machine that never ran them (10 s of an
    18 s first run, measured on an H100); CuPy's plain reduction kernels compile in ~0.15 s.
    devgrad's hot sums (bias gradients, broadcast gradients) are GEMMs with a ones vector
    (``cuda_gemm.sum_axes``) and never reach either; what remains (loss and metric sums,
    norms) is small. This is a process-wide CuPy setting; ``devgrad info`` reports it."""
    if "CUPY_ACCELERATORS" in os.environ:
        return f"CUPY_ACCELERATORS={os.environ['CUPY_ACCELERATORS']!r} (as set by the user)"
    try:
        from cupy._core import _accelerator  # noqa: PLC0415 - CuPy's own switch, present since v8

        _accelerator.set_reduction_accelerators([])
        _accelerator.set_routine_accelerators([])
    except Exception as exc:  # another CuPy layout: keep its defaults, say so
        return f"CuPy's defaults (could not turn CUB off: {type(exc).__name__}: {exc})"
    return "none: CuPy's plain reduction kernels (devgrad turned CUB off; set CUPY_ACCELERATORS to choose)"


def state() -> dict:
    """The probe result: module (or None), device count, CuPy version, reason unavailable."""
    if not _state:
        with _lock:
            if not _state:
                _state.update(_probe())
    return _state


def available() -> bool:
    return state()["module"] is not None


def device_count() -> int:
    return state()["count"]


def unavailable_reason() -> str | None:
    return state()["reason"]


def module():
    """The cupy module; raises RuntimeError with the reason when CUDA is unusable."""
    st = state()
    if st["module"] is None:
        raise RuntimeError(f"CUDA is not available: {st['reason']}")
    return st["module"]


def kernel_cache_dir() -> Path:
    """Where CuPy keeps compiled kernels: $CUPY_CACHE_DIR, else its default ~/.cupy/kernel_cache."""
    return Path(os.environ.get("CUPY_CACHE_DIR") or Path.home() / ".cupy" / "kernel_cache")
