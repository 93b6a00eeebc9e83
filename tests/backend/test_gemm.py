"""The GEMM seam, checked without a GPU.

``devgrad.backend.gemm`` maps a row-major ``x @ y`` with arbitrary strides to one column-major
(strided-batched) BLAS call; ``devgrad.backend.cuda_gemm.matmul`` drives that mapping and
calls cuBLAS through ``devgrad.backend.cublas`` (ctypes). Here the cuBLAS library is a host
build with cuBLAS's C ABI (``tests/support/cublas_harness.py``) and CuPy is NumPy (the kernel
harness's stand-in), so the whole path — layouts, leading dimensions, batch strides, the
ctypes argument order, the stream the handle is set to, TF32 — runs and is compared with
``numpy.matmul``.
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import weakref

import numpy as np
import pytest

import devgrad as dg
from devgrad.backend import cublas, cuda_gemm, cuda_kernels, gemm
from devgrad.backend import precision as backend_precision

from tests.support import cublas_harness
from tests.support import kernel_harness as harness


def _operand(rng, shape, layout, dtype):
    """An array of ``shape`` whose memory is laid out as ``layout`` says (a view, not a copy)."""
    *batch, r, c = shape
    if layout == "c":
        base = rng.standard_normal(shape)
        return base.astype(dtype)
    if layout == "t":  # w.T: columns contiguous
        return rng.standard_normal((*batch, c, r)).astype(dtype).swapaxes(-1, -2)
    if layout == "rows":  # a slice of wider rows: leading dimension > columns
        return rng.standard_normal((*batch, r, c + 3)).astype(dtype)[..., :c]
    if layout == "cols":  # a transposed slice: leading dimension > rows
        return rng.standard_normal((*batch, c, r + 2)).astype(dtype)[..., :r].swapaxes(-1, -2)
    if layout == "step":  # every other column: no BLAS layout, the seam copies it
        return rng.standard_normal((*batch, r, 2 * c)).astype(dtype)[..., ::2]
    if layout == "bcast":  # one matrix broadcast over the batch (stride 0)
        return np.broadcast_to(rng.standard_normal((1, r, c)).astype(dtype), shape)
    raise ValueError(layout)


@pytest.fixture
def host_gemm(monkeypatch):
    """CuPy and cuBLAS replaced by host stand-ins; returns the recorder of the host cuBLAS."""
    if harness.compiler() is None:
        pytest.skip("no C++ compiler to build the host cuBLAS")
    path = cublas_harness.library_path()
    monkeypatch.setattr(cublas, "_state", {"library": None, "handles": {}})
    cublas.load(path)
    monkeypatch.setattr(cuda_gemm, "module", harness.host_cupy)
    monkeypatch.setattr(cuda_kernels, "module", harness.host_cupy)  # the ones vectors' fill
    monkeypatch.setattr(cuda_kernels, "address", lambda a: a.ctypes.data)
    monkeypatch.setattr(cuda_gemm, "device_index", lambda a: 0)
    monkeypatch.setattr(cuda_gemm, "current_stream", lambda: 0x5000)
    monkeypatch.setattr(cuda_gemm, "capturing", lambda: False)
    monkeypatch.setattr(cuda_gemm, "_ones", {})  # host ones vectors stay out of a GPU run's cache
    return cublas_harness.Recorder(path)


def _tol(dtype):
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


LAYOUTS = ["c", "t", "rows", "cols", "step"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("x_layout", "y_layout"), list(itertools.product(LAYOUTS, LAYOUTS)))
def test_2d_products_in_every_layout_match_numpy(host_gemm, x_layout, y_layout, dtype):
    rng = np.random.default_rng(0)
    for m, k, n in [(5, 3, 4), (1, 3, 4), (5, 1, 4), (5, 3, 1), (1, 1, 1), (7, 6, 2)]:
        x = _operand(rng, (m, k), x_layout, dtype)
        y = _operand(rng, (k, n), y_layout, dtype)
        out = cuda_gemm.matmul(x, y)
        assert out.shape == (m, n) and out.dtype == dtype
        np.testing.assert_allclose(out, np.matmul(x, y), **_tol(dtype))
    assert host_gemm.entry == ("cublasSgemm_v2" if dtype == np.float32 else "cublasDgemm_v2")


@pytest.mark.parametrize(("x_shape", "y_shape"), [
    ((4, 5, 3), (4, 3, 2)), ((4, 5, 3), (3, 2)), ((5, 3), (4, 3, 2)), ((2, 1, 5, 3), (1, 3, 3, 2)),
    ((2, 3, 5, 3), (3, 2)), ((3,), (3, 2)), ((5, 3), (3,)), ((3,), (3,)), ((4, 5, 3), (3,)), ((3,), (4, 3, 2)),
])
@pytest.mark.parametrize("layout", ["c", "t", "rows", "bcast"])
def test_batched_and_1d_products_match_numpy(host_gemm, x_shape, y_shape, layout):
    rng = np.random.default_rng(1)

    def make(shape, lay):
        if len(shape) < 2 or (lay == "bcast" and len(shape) < 3):
            return rng.standard_normal(shape).astype(np.float32)
        return _operand(rng, shape, lay, np.float32)

    x, y = make(x_shape, layout), make(y_shape, "c")
    out = cuda_gemm.matmul(x, y)
    want = np.matmul(x, y)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, **_tol(np.float32))


def test_a_batch_uses_one_strided_batched_call(host_gemm):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 4, 3)), rng.standard_normal((6, 3, 5))
    calls = host_gemm.calls
    np.testing.assert_allclose(cuda_gemm.matmul(x, y), x @ y, **_tol(np.float64))
    assert host_gemm.calls == calls + 1 and host_gemm.entry == "cublasDgemmStridedBatched"


def test_rows_of_a_3d_input_times_a_weight_are_one_gemm(host_gemm):
    """Linear on (batch, time, features): one GEMM over all rows, not a batch of small ones."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((4, 7, 3)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(cuda_gemm.matmul(x, w.T), x @ w.T, **_tol(np.float32))
    assert host_gemm.entry == "cublasSgemm_v2"


def test_empty_products(host_gemm):
    for x_shape, y_shape in [((0, 3), (3, 4)), ((5, 0), (0, 4)), ((5, 3), (3, 0)), ((0, 5, 3), (3, 2))]:
        x, y = np.ones(x_shape, dtype=np.float32), np.ones(y_shape, dtype=np.float32)
        out = cuda_gemm.matmul(x, y)
        assert out.shape == np.matmul(x, y).shape and (out == 0).all()


def test_the_handle_follows_the_current_stream(host_gemm, monkeypatch):
    """cuBLAS must run on the current stream — the capturing one during capture — and the
    stream is set only when it changed (each set is a call into the library)."""
    x = np.ones((2, 2), dtype=np.float32)
    cuda_gemm.matmul(x, x)
    assert host_gemm.stream == 0x5000
    before = host_gemm.set_stream_calls
    cuda_gemm.matmul(x, x)
    assert host_gemm.set_stream_calls == before
    monkeypatch.setattr(cuda_gemm, "current_stream", lambda: 0x7000)
    cuda_gemm.matmul(x, x)
    assert host_gemm.stream == 0x7000 and host_gemm.set_stream_calls == before + 1


def test_high_precision_asks_cublas_for_tf32_on_float32_only(host_gemm):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_allclose(cuda_gemm.matmul(x, y, "high"), x @ y, **_tol(np.float32))
    assert host_gemm.entry == "cublasGemmEx" and host_gemm.compute == cublas.COMPUTE_32F_FAST_TF32
    xb, yb = np.stack([x, x]), np.stack([y, y])
    np.testing.assert_allclose(cuda_gemm.matmul(xb, yb, "high"), xb @ yb, **_tol(np.float32))
    assert host_gemm.entry == "cublasGemmStridedBatchedEx"
    cuda_gemm.matmul(x.astype(np.float64), y.astype(np.float64), "high")
    assert host_gemm.entry == "cublasDgemm_v2"  # TF32 is a float32 matter


def test_other_dtypes_fall_back_except_during_capture(host_gemm, monkeypatch):
    a = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(cuda_gemm.matmul(a, a.T), a @ a.T)
    calls = host_gemm.calls
    cuda_gemm.matmul(a.astype(np.float32), a.T.astype(np.float64))  # mixed: CuPy's matmul promotes
    assert host_gemm.calls == calls
    monkeypatch.setattr(cuda_gemm, "capturing", lambda: True)
    with pytest.raises(RuntimeError, match=r"int64 \(2, 3\) @ int64 \(3, 2\) cannot be captured"):
        cuda_gemm.matmul(a, a.T)


def test_a_failing_cublas_call_raises_with_its_status(host_gemm):
    bad = gemm.GemmPlan(trans_a=False, trans_b=False, m=4, n=2, k=3, lda=1, ldb=3, ldc=4, batch=1, stride_a=0,
                        stride_b=0, stride_c=8)
    buf = np.zeros(16, dtype=np.float32)
    with pytest.raises(cublas.CublasError, match="CUBLAS_STATUS_INVALID_VALUE"):
        cublas.gemm(bad, 4, buf.ctypes.data, buf.ctypes.data, buf.ctypes.data, index=0, stream=0)


def _span(array) -> tuple[int, int]:
    """[first, last] element offsets of an array's memory, relative to its first element."""
    lo = sum(min(0, (n - 1) * s) for n, s in zip(array.shape, array.strides)) // array.itemsize
    hi = sum(max(0, (n - 1) * s) for n, s in zip(array.shape, array.strides)) // array.itemsize
    return lo, hi


def _touched(trans: bool, rows: int, cols: int, ld: int, batch: int, stride: int) -> int:
    """The last element offset BLAS reads of op(M) (rows × cols after op) over the batch."""
    stored_rows, stored_cols = (cols, rows) if trans else (rows, cols)
    return (batch - 1) * stride + (stored_cols - 1) * ld + stored_rows - 1


@pytest.mark.parametrize(("x_layout", "y_layout"), list(itertools.product(["c", "t", "rows", "cols", "bcast"],
                                                                        ["c", "t", "rows", "cols"])))
def test_a_plan_reads_only_inside_its_operands(x_layout, y_layout):
    """What cuBLAS would read stays inside each operand's memory (an off-by-one leading dimension
    or batch stride would read a neighbour's memory on the GPU, silently)."""
    rng = np.random.default_rng(5)
    for batch, m, k, n in [(1, 4, 3, 5), (3, 4, 3, 5), (3, 1, 3, 5), (3, 4, 1, 5), (3, 4, 3, 1)]:
        shape_x = (batch, m, k) if batch > 1 or x_layout == "bcast" else (m, k)
        x = _operand(rng, shape_x, x_layout, np.float32)
        y = _operand(rng, (k, n), y_layout, np.float32)
        elems = lambda a: tuple(s // a.itemsize for s in a.strides)  # noqa: E731
        p = gemm.plan(x.shape, elems(x), y.shape, elems(y))
        assert p is not None
        assert _touched(p.trans_a, p.m, p.k, p.lda, p.batch, p.stride_a) <= _span(y)[1]
        assert _touched(p.trans_b, p.k, p.n, p.ldb, p.batch, p.stride_b) <= _span(x)[1]


def test_layouts_no_single_blas_call_can_read_are_refused():
    assert gemm.operand_layout(3, 4, 8, 2) is None  # every other column
    assert gemm.operand_layout(3, 4, 0, 1) is None  # rows broadcast (stride 0)
    assert gemm.batch_stride((2, 3), (0, 12)) is None  # broadcast outer, walked inner: no single stride
    assert gemm.batch_stride((2, 3), (36, 12)) == 12
    assert gemm.batch_stride((2, 1, 3), (0, 99, 0)) == 0


def test_matmul_precision_setting():
    assert dg.get_float32_matmul_precision() == "highest"
    try:
        dg.set_float32_matmul_precision("high")
        assert dg.get_float32_matmul_precision() == "high"
        x = dg.tensor([[1.0, 2.0]])
        assert (x @ x.T).item() == 5.0  # the CPU ignores it
    finally:
        dg.set_float32_matmul_precision("highest")
    with pytest.raises(ValueError, match="'highest', 'high'"):
        dg.set_float32_matmul_precision("medium")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "axes"), [((7, 5), (0,)), ((3, 4, 5), (0, 1)), ((6, 4), (1,)), ((2, 3, 4), (-1, -2)),
                                             ((5,), (0,)), ((2, 3, 4), (1,)), ((4, 1), (0,))])
def test_sums_over_leading_or_trailing_axes_are_gemms_with_ones(host_gemm, monkeypatch, shape, axes, dtype):
    """Bias and broadcast gradients are summed by cuBLAS (nothing to compile, capturable), never
    with TF32 even when float32 matmuls may use it; a middle axis falls back to CuPy's sum."""
    monkeypatch.setattr(cuda_kernels, "current_device", lambda: 0)
    monkeypatch.setattr(cuda_gemm, "_ones", {})
    monkeypatch.setattr(backend_precision, "_precision", ["high"])
    a = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    before = host_gemm.calls
    got = cuda_gemm.sum_axes(a, axes)
    np.testing.assert_allclose(got, a.sum(axis=axes), **_tol(dtype))
    assert got.shape == a.sum(axis=axes).shape
    through_gemm = host_gemm.calls > before
    # a mean: the same sum scaled, in the same one call (the scale is the GEMM's alpha)
    calls = host_gemm.calls
    scaled = cuda_gemm.sum_axes(a, axes, 0.125)
    np.testing.assert_allclose(scaled, a.sum(axis=axes) * 0.125, **_tol(dtype))
    assert host_gemm.calls - calls == int(through_gemm)
    middle = shape == (2, 3, 4) and axes == (1,)
    assert through_gemm != middle
    if through_gemm:
        assert host_gemm.entry == ("cublasSgemm_v2" if dtype == np.float32 else "cublasDgemm_v2")


def test_a_graph_keeps_the_ones_vectors_it_read_alive(host_gemm, monkeypatch):
    """A captured graph reads the cached ones vectors of its sums by address: dropped from the
    cache (it holds 16), one the graph read must stay allocated, so the recording keeps it."""
    monkeypatch.setattr(cuda_kernels, "current_device", lambda: 0)
    monkeypatch.setattr(cuda_gemm, "_ones", {})
    with cuda_gemm.keep_alive_for_graph() as kept:
        cuda_gemm.sum_axes(np.ones((5, 3), dtype=np.float32), (0,))
    read = weakref.ref(kept[0])
    unread = weakref.ref(cuda_gemm._ones_vector(7, np.float32))
    for n in range(100, 100 + cuda_gemm._ONES_KEEP):  # push both out of the cache
        cuda_gemm._ones_vector(n, np.float32)
    gc.collect()
    assert read() is not None and unread() is None
    assert cuda_gemm._recording is None


def test_a_ones_vector_first_made_during_a_capture_is_the_graphs_alone(host_gemm, monkeypatch):
    """A sum of a length no eager step has summed, met while a graph is recorded: its ones vector
    comes from the graph's memory pool and is filled only when the graph replays, so it must not
    enter the cache (an eager sum would read it unfilled, and freed once the graph is gone); the
    graph keeps it, and the next eager sum of that length makes and caches its own."""
    monkeypatch.setattr(cuda_kernels, "current_device", lambda: 0)
    monkeypatch.setattr(cuda_gemm, "_ones", {})
    a = np.arange(15, dtype=np.float32).reshape(5, 3)
    monkeypatch.setattr(cuda_gemm, "capturing", lambda: True)
    with cuda_gemm.keep_alive_for_graph() as kept:
        np.testing.assert_array_equal(cuda_gemm.sum_axes(a, (0,)), a.sum(axis=0))
    assert len(kept) == 1 and kept[0].shape == (5,)
    assert cuda_gemm._ones == {}
    monkeypatch.setattr(cuda_gemm, "capturing", lambda: False)
    np.testing.assert_array_equal(cuda_gemm.sum_axes(a, (0,)), a.sum(axis=0))
    assert list(cuda_gemm._ones) == [(0, np.dtype(np.float32), 5)]
    assert cuda_gemm._ones[(0, np.dtype(np.float32), 5)] is not kept[0]


# -- finding libcublas ----------------------------------------------------------------------------

def test_the_library_this_process_mapped_is_the_one_found(tmp_path):
    """CuPy's wheel decides where libcublas lives (nvidia/cu13/lib for cupy-cuda13x): the GEMM
    path takes the one the process has mapped, by its path. A copy of the host build named like
    cuBLAS, loaded by a fresh process, is what that process finds (in a child process: mapped
    into this one, it would be found by the GPU tests of this worker instead of the real one)."""
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "lib" / "libcublas.so.99"
    copy.parent.mkdir()
    shutil.copy(cublas_harness.library_path(), copy)
    probe = ("import ctypes, sys; from devgrad.backend import cublas; before = cublas.mapped_library(); "
             "ctypes.CDLL(sys.argv[1]); print(before); print(cublas.mapped_library())")
    out = subprocess.run([sys.executable, "-c", probe, str(copy)], capture_output=True, text=True, check=True)
    before, found = out.stdout.splitlines()
    assert before == "None" and found == str(copy)


class _Found:
    def __init__(self, abs_path):
        self.abs_path = abs_path


def test_without_a_mapped_library_cuda_pathfinder_is_asked_then_the_usual_names(monkeypatch):
    """Before CuPy has loaded cuBLAS (or when its handle cannot be had), NVIDIA's cuda-pathfinder,
    which CuPy 14 depends on and which knows the pip wheels' layouts, finds it; without it (or
    when it finds nothing) the usual sonames are tried; with none of them, one clear error."""
    import sys
    import types

    monkeypatch.setattr(cublas, "mapped_library", lambda: None)
    monkeypatch.setattr(cublas.cupy_import, "available", lambda: False)
    asked = []

    def load_nvidia_dynamic_lib(name):
        asked.append(name)
        return _Found("/opt/wheels/nvidia/cu13/lib/libcublas.so.13")

    pathfinder = types.ModuleType("cuda.pathfinder")
    pathfinder.load_nvidia_dynamic_lib = load_nvidia_dynamic_lib
    monkeypatch.setitem(sys.modules, "cuda", types.ModuleType("cuda"))
    monkeypatch.setitem(sys.modules, "cuda.pathfinder", pathfinder)
    assert cublas.find_library() == "/opt/wheels/nvidia/cu13/lib/libcublas.so.13" and asked == ["cublas"]

    def not_found(name):
        raise RuntimeError(f'Failure finding "lib{name}.so.13"')  # pathfinder's DynamicLibNotFoundError

    pathfinder.load_nvidia_dynamic_lib = not_found
    tried = []

    def cdll(name, *args, **kwargs):
        tried.append(name)
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(cublas.ctypes, "CDLL", cdll)
    with pytest.raises(cublas.CublasError, match="none of its usual names loads"):
        cublas.find_library()
    assert tried == ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"]
    monkeypatch.setitem(sys.modules, "cuda.pathfinder", None)  # not installed: import fails
    tried.clear()
    with pytest.raises(cublas.CublasError):
        cublas.find_library()
    assert len(tried) == 4


def test_every_fast_gemm_call_passes_what_its_c_signature_takes(host_gemm, monkeypatch):
    """The GEMMs are called without ctypes ``argtypes`` (cheaper), so nothing converts their
    arguments: each must already be what the C signature takes, or cuBLAS reads garbage. A Python
    int is passed as a 32-bit C int (right for int, wrong for a pointer or a batch stride), so
    every pointer must be a c_void_p, every stride a c_longlong, every int a Python int in range.
    Each entry point (float32, float64, TF32, and their strided-batched forms) is checked against
    the signature its declared ``argtypes`` copy from cuBLAS's header."""
    lib = cublas.library()
    seen = set()

    def checked(name, fn):
        signature = cublas._SIGNATURES[name]

        def call(*args):  # checked before the C function runs: a wrong kind could crash it
            seen.add(name)
            assert len(args) == len(signature), name
            for i, (arg, kind) in enumerate(zip(args, signature)):
                if kind is ctypes.c_int:
                    assert type(arg) is int and -(2**31) <= arg < 2**31, (name, i, arg)
                else:
                    assert type(arg) is kind, (name, i, type(arg).__name__, kind.__name__)
            return fn(*args)
        return call

    monkeypatch.setattr(lib, "fast", {name: checked(name, fn) for name, fn in lib.fast.items()})
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for precision in ("highest", "high"):
            x, y = rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((4, 2)).astype(dtype)
            np.testing.assert_allclose(cuda_gemm.matmul(x, y, precision), x @ y, **_tol(dtype))
            xb, yb = np.stack([x, x + 1]), np.stack([y, y - 1])
            np.testing.assert_allclose(cuda_gemm.matmul(xb, yb, precision), xb @ yb, **_tol(dtype))
    assert seen == set(cublas._GEMMS)


def _cublas_header():
    """cuBLAS's own cublas_api.h where the installed CUDA has it: beside the libcublas devgrad
    finds (pip wheels keep lib/ and include/ side by side), or in a CUDA toolkit."""
    import os
    from pathlib import Path

    places = []
    try:
        places.append(Path(cublas.find_library()).resolve().parent.parent / "include")
    except Exception:  # no libcublas here: look in a toolkit
        pass
    places += [Path(os.environ[v]) / "include" for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    places.append(Path("/usr/local/cuda/include"))
    return next((p / "cublas_api.h" for p in places if (p / "cublas_api.h").is_file()), None)


def test_the_ctypes_signatures_are_cublas_own():
    """Every function devgrad calls through ctypes, parameter by parameter (pointer, int or 64-bit
    int), as cuBLAS's header declares it: the host stand-in of the other tests was written from
    the same documentation, so only the real header can show a parameter both got wrong. Runs where
    the CUDA installation has the header (cupy-cuda13x's nvidia-cublas wheel does)."""
    import re

    header = _cublas_header()
    if header is None:
        pytest.skip("cuBLAS's cublas_api.h is not installed here")
    def kind(param: str):  # a declared parameter as ctypes passes it: pointer, 64-bit int or int
        if "*" in param or param.split(maxsplit=1)[0] in ("cublasHandle_t", "cudaStream_t"):
            return ctypes.c_void_p
        return ctypes.c_longlong if "long long" in param or "int64_t" in param else ctypes.c_int

    text = header.read_text()
    for name, signature in cublas._SIGNATURES.items():
        found = re.search(r"CUBLASAPI\s[^;{]*?CUBLASWINAPI\s+" + name + r"\s*\(([^)]*)\)", text)
        assert found, f"{name} is not declared in {header}"
        params = [p.strip() for p in found.group(1).split(",")]
        declared = [kind(p) for p in params]
        ours = [ctypes.c_void_p if a is not ctypes.c_int and a is not ctypes.c_longlong else a for a in signature]
        assert ours == declared, (name, params)
