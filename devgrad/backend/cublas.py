"""cuBLAS GEMMs through ctypes: matrix products that work while a CUDA graph is being captured.

CuPy refuses every cuBLAS call while the current stream is capturing (its wrappers check
the stream first, a known CuPy limitation), although cuBLAS itself supports capture. So the
CUDA backend calls the GEMM functions of the very libcublas CuPy loaded, through ctypes,
with a handle of devgrad's own per GPU whose stream is set to the current stream (the
capturing one during capture) before a GEMM whenever it changed. Pointer mode is host:
alpha and beta are host scalars, read when the call is made (and so frozen into a graph,
which is what we want for the constants 1 and 0).

The library is found among the shared objects this process has mapped (CuPy's wheel
decides where it lives, e.g. ``nvidia/cu13/lib/libcublas.so.13``), then by its usual names.
Tests point ``load(path)`` at a host library with the same C signatures, so the argument
marshalling is checked without a GPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devgrad.backend import cupy_import
from devgrad.backend import precision as _settings
from devgrad.backend.gemm import GemmPlan

OP = (0, 1)  # CUBLAS_OP_N, CUBLAS_OP_T
CUDA_R_32F, CUDA_R_64F = 0, 1
COMPUTE_32F, COMPUTE_32F_FAST_TF32, COMPUTE_64F = 68, 77, 70
GEMM_DEFAULT = -1
_H, _P, _I, _L = ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
_SIGNATURES = {
    "cublasCreate_v2": [ctypes.POINTER(ctypes.c_void_p)],
    "cublasSetStream_v2": [_H, _P],
    "cublasGetStatusString": [_I],
    # handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc
    "cublasSgemm_v2": [_H, _I, _I, _I, _I, _I, _P, _P, _I, _P, _I, _P, _P, _I],
    "cublasDgemm_v2": [_H, _I, _I, _I, _I, _I, _P, _P, _I, _P, _I, _P, _P, _I],
    # ... A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batchCount
    "cublasSgemmStridedBatched": [_H, _I, _I, _I, _I, _I, _P, _P, _I, _L, _P, _I, _L, _P, _P, _I, _L, _I],
    "cublasDgemmStridedBatched": [_H, _I, _I, _I, _I, _I, _P, _P, _I, _L, _P, _I, _L, _P, _P, _I, _L, _I],
    # handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, compute, algo
    "cublasGemmEx": [_H, _I, _I, _I, _I, _I, _P, _P, _I, _I, _P, _I, _I, _P, _P, _I, _I, _I, _I],
    "cublasGemmStridedBatchedEx": [_H, _I, _I, _I, _I, _I, _P, _P, _I, _I, _L, _P, _I, _I, _L, _P, _P, _I, _I, _L,
                                   _I, _I, _I],
}


class CublasError(RuntimeError):
    """cuBLAS could not be loaded or a call failed."""


_GEMMS = ("cublasSgemm_v2", "cublasDgemm_v2", "cublasSgemmStridedBatched", "cublasDgemmStridedBatched",
          "cublasGemmEx", "cublasGemmStridedBatchedEx")


class _Library:
    """The functions of one loaded libcublas, with their argument types set once.

    The GEMMs, called several times per training step, are also kept as ``fast[name]``: the
    same C functions without ``argtypes``, which ctypes then calls without converting each
    argument through its declared type. Their callers pass exactly what the C signature takes:
    Python ints for ``int`` (ctypes passes those as C ints), ``c_longlong`` for the batch
    strides, ``c_void_p`` for pointers. With the lookups trimmed too, ``gemm`` costs 2.3 µs of
    host time where it cost 5.4 µs (a 1×1 GEMM of the host stand-in, 2-core VM).
    """

    if TYPE_CHECKING:  # the C functions are set as attributes when the library loads
        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, path: str):
        self.path = path
        lib = ctypes.CDLL(path)
        self.fast = {}
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes = argtypes
            fn.restype = ctypes.c_char_p if name == "cublasGetStatusString" else ctypes.c_int
            setattr(self, name, fn)
            if name in _GEMMS:
                self.fast[name] = fast = lib[name]  # a second function object: its own (no) argtypes
                fast.restype = ctypes.c_int
        # Host scalars for alpha = 1, beta = 0 (pointer mode host), one pair per dtype.
        self.one_zero = {4: (ctypes.c_float(1.0), ctypes.c_float(0.0)), 8: (ctypes.c_double(1.0), ctypes.c_double(0.0))}
        self.one_zero_ptr = {size: tuple(ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in pair)
                             for size, pair in self.one_zero.items()}

    def check(self, status: int, what: str) -> None:
        if status != 0:
            message = self.cublasGetStatusString(status)
            text = message.decode() if message else f"status {status}"
            raise CublasError(f"{what} failed: {text}")


_lock = threading.Lock()
_state: dict = {"library": None, "handles": {}}


def mapped_library() -> str | None:
    """The path of the libcublas this process has already loaded (CuPy's), if any."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    for line in maps.read_text().splitlines():
        fields = line.split(maxsplit=5)  # address, perms, offset, dev, inode, path
        if len(fields) == 6 and "/libcublas.so" in fields[5]:  # not libcublasLt.so: no classic GEMMs there
            return fields[5].strip()
    return None


def pathfinder_library() -> str | None:
    """libcublas as NVIDIA's cuda-pathfinder finds and loads it (a CuPy 14 dependency: it knows
    the pip wheels' layouts, e.g. nvidia/cu13/lib, which the dynamic loader does not search)."""
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib  # noqa: PLC0415 - comes with CuPy 14
    except ImportError:
        return None
    try:
        return load_nvidia_dynamic_lib("cublas").abs_path
    except Exception:  # not installed where pathfinder looks (DynamicLibNotFoundError)
        return None


def find_library() -> str:
    """Where libcublas is: the one mapped into this process (after asking CuPy for its cuBLAS
    handle, which makes CuPy load it from wherever its wheel keeps it), else the one NVIDIA's
    cuda-pathfinder finds, else the first of its usual names that loads."""
    path = mapped_library()
    if path is None and cupy_import.available():
        with contextlib.suppress(Exception):  # a CuPy without cuBLAS: look further
            cupy_import.module().cuda.device.get_cublas_handle()
        path = mapped_library()
    path = path or pathfinder_library()
    if path:
        return path
    for name in ("libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return name
    raise CublasError("libcublas is not loaded in this process and none of its usual names loads; "
                      "install the CuPy extra that matches your CUDA toolkit")


def load(path: str | None = None) -> _Library:
    """Load (once) the cuBLAS library at ``path``, or the one found by ``find_library``."""
    with _lock:
        if path is not None or _state["library"] is None:
            _state["library"] = _Library(path or find_library())
            _state["handles"] = {}
        return _state["library"]


def library() -> _Library:
    lib = _state["library"]
    return lib if lib is not None else load()


def handle(index: int) -> list:
    """devgrad's cuBLAS handle for GPU ``index`` as [handle, stream it is set to]. Create it
    eagerly (outside any capture: creating a handle allocates device memory)."""
    entry = _state["handles"].get(index)
    if entry is None:
        lib = library()
        raw = ctypes.c_void_p()
        lib.check(lib.cublasCreate_v2(ctypes.byref(raw)), "cublasCreate")
        entry = _state["handles"][index] = [raw.value, None, raw]  # raw: the handle as a ctypes argument
    return entry


_calls = [0]  # GEMMs run in this process


def calls() -> int:
    """How many GEMMs this process has run through cuBLAS."""
    return _calls[0]


def gemm(plan: GemmPlan, itemsize: int, a_ptr: int, b_ptr: int, c_ptr: int, *, index: int, stream: int,
         precision: str | None = None, alpha: float = 1.0, beta: float = 0.0) -> None:
    """Run ``plan`` (see ``devgrad.backend.gemm``) on GPU ``index`` on ``stream``:
    C = alpha·op(A)·op(B) + beta·C for float32 (``itemsize`` 4) or float64 (8) operands at the
    given device addresses. alpha and beta are host numbers, read when the call is made (so a
    captured graph keeps the values it had); beta 1 adds into C."""
    lib = _state["library"] or library()
    entry = _state["handles"].get(index) or handle(index)
    if entry[1] != stream:  # the handle follows the current stream (the capturing one during capture)
        lib.check(lib.cublasSetStream_v2(entry[0], stream), "cublasSetStream")
        entry[1] = stream
    h = entry[2]
    one, zero = lib.one_zero_ptr[itemsize]
    if alpha != 1.0 or beta != 0.0:
        scalar_type = ctypes.c_float if itemsize == 4 else ctypes.c_double
        if alpha != 1.0:
            alpha_value = scalar_type(alpha)  # alive until the call returns
            one = ctypes.cast(ctypes.pointer(alpha_value), ctypes.c_void_p)
        if beta != 0.0:
            beta_value = scalar_type(beta)
            zero = ctypes.cast(ctypes.pointer(beta_value), ctypes.c_void_p)
    ta, tb = OP[plan.trans_a], OP[plan.trans_b]
    a, b, c = ctypes.c_void_p(a_ptr), ctypes.c_void_p(b_ptr), ctypes.c_void_p(c_ptr)
    tf32 = itemsize == 4 and (precision or _settings.precision()) == "high"
    fast = lib.fast  # no argtypes: ints as Python ints (C int), pointers and long longs wrapped
    if plan.batch == 1:
        if tf32:
            status = fast["cublasGemmEx"](h, ta, tb, plan.m, plan.n, plan.k, one, a, CUDA_R_32F, plan.lda, b,
                                          CUDA_R_32F, plan.ldb, zero, c, CUDA_R_32F, plan.ldc,
                                          COMPUTE_32F_FAST_TF32, GEMM_DEFAULT)
        else:
            status = fast["cublasSgemm_v2" if itemsize == 4 else "cublasDgemm_v2"](
                h, ta, tb, plan.m, plan.n, plan.k, one, a, plan.lda, b, plan.ldb, zero, c, plan.ldc)
    else:
        sa, sb, sc = (ctypes.c_longlong(v) for v in (plan.stride_a, plan.stride_b, plan.stride_c))
        if tf32:
            status = fast["cublasGemmStridedBatchedEx"](
                h, ta, tb, plan.m, plan.n, plan.k, one, a, CUDA_R_32F, plan.lda, sa, b, CUDA_R_32F, plan.ldb, sb,
                zero, c, CUDA_R_32F, plan.ldc, sc, plan.batch, COMPUTE_32F_FAST_TF32, GEMM_DEFAULT)
        else:
            status = fast["cublasSgemmStridedBatched" if itemsize == 4 else "cublasDgemmStridedBatched"](
                h, ta, tb, plan.m, plan.n, plan.k, one, a, plan.lda, sa, b, plan.ldb, sb, zero, c, plan.ldc, sc,
                plan.batch)
    _calls[0] += 1
    if status != 0:
        lib.check(status, f"cuBLAS GEMM (m={plan.m}, n={plan.n}, k={plan.k}, batch={plan.batch})")
