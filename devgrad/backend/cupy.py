"""The CUDA backend: CuPy arrays in GPU memory.

CuPy is optional. It is imported on first use, and any failure (not only ImportError:
a broken CUDA install can raise anything) is kept so that ``devgrad info`` and the error
raised when a user asks for ``cuda`` can say why the GPU is unavailable.
"""

from __future__ import annotations

import threading

import numpy as np

INSTALL_HINT = (
    "install the CuPy extra that matches your CUDA toolkit: "
    "pip install 'devgrad[cuda12]' (CUDA 12.x) or 'devgrad[cuda13]' (CUDA 13.x)"
)

_lock = threading.Lock()
_state: dict = {}


def _probe() -> dict:
    """Import CuPy and count devices once; remember the module or the reason it failed."""
    try:
        import cupy
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
    return {"module": cupy, "count": count, "version": version, "reason": None}


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


def activate(index: int):
    """CuPy's context manager making GPU ``index`` the current device."""
    return module().cuda.Device(index)


def to_device(array, index: int):
    """Copy a host (or other-GPU) array onto GPU ``index`` (an array already there is returned as is)."""
    cp = module()
    if isinstance(array, cp.ndarray) and array.device.id != index:
        array = cp.asnumpy(array)  # cp.asarray would hand back the array on its old GPU
    with cp.cuda.Device(index):
        return cp.asarray(array)


def to_host(array) -> np.ndarray:
    """Copy a GPU array into host memory (this synchronizes)."""
    if isinstance(array, np.ndarray):
        return array
    return module().asnumpy(array)


def scatter_add(target, index, values) -> None:
    """target[index] += values, accumulating repeated indices (atomic adds on the GPU)."""
    import cupyx

    cupyx.scatter_add(target, index, values)


def generator(seed: int, index: int):
    cp = module()
    with cp.cuda.Device(index):
        return cp.random.RandomState(seed)


def uniform(gen, shape, dtype, index: int):
    cp = module()
    dtype = np.dtype(dtype)
    with cp.cuda.Device(index):
        if dtype in (np.float32, np.float64):
            return gen.random_sample(shape, dtype=dtype)
        return gen.random_sample(shape).astype(dtype)


def sigmoid_(x):
    """The logistic function in place."""
    cp = module()
    cp.negative(x, out=x)
    cp.exp(x, out=x)
    x += 1
    return cp.reciprocal(x, out=x)


def sigmoid(x):
    """1 / (1 + exp(-x)); on the GPU an overflow to inf gives 0 without any warning."""
    cp = module()
    out = cp.negative(x)
    cp.exp(out, out=out)
    out += 1
    return cp.reciprocal(out, out=out)


def synchronize(index: int) -> None:
    module().cuda.Device(index).synchronize()


def memory_info(index: int) -> dict:
    cp = module()
    pool = cp.get_default_memory_pool()
    with cp.cuda.Device(index):
        free, total = cp.cuda.runtime.memGetInfo()
    return {"pool_used_bytes": int(pool.used_bytes()), "pool_total_bytes": int(pool.total_bytes()),
            "device_free_bytes": int(free), "device_total_bytes": int(total)}


def device_name(index: int) -> str:
    cp = module()
    try:
        props = cp.cuda.runtime.getDeviceProperties(index)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return "CUDA device"
