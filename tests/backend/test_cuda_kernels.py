"""The fused CUDA kernels, checked on a machine without a GPU.

Their bodies compile with NVRTC for float32 and float64 (when CuPy's NVRTC library is
installed), and, compiled for the host CPU by a C++ compiler, compute what the NumPy backend
computes — activations and their gradients, bias+activation, the two cross-entropies, SGD
(with and without momentum) and Adam/AdamW/AMSGrad with every option. The CUDA backend's
Python functions then run against a stand-in for CuPy's ElementwiseKernel built on the same
host code (same argument binding, broadcasting and dtype rules), so argument order and dtypes
are checked too. On a GPU the op and optimizer tests check the kernels as CuPy runs them.
"""

from __future__ import annotations

import re
import types

import numpy as np
import pytest

import devgrad.experiment  # noqa: F401 - registers the training loop's kernels
from devgrad.backend import cublas, registry
from devgrad.backend import cuda_gemm
from devgrad.backend import cuda_kernels as cuda_backend
from devgrad.nn import _cuda_kernels as nn_cuda
from devgrad.optim import _cuda_kernels as optim_cuda
from devgrad.backend.cuda_sources import ELEMENTWISE, MULTI_KERNELS, function_name, module_source

from tests.support import cublas_harness
from tests.support import kernel_harness as harness

DTYPES = [np.float32, np.float64]
cpu_backend = registry.KernelTable("cpu")  # every kernel registered for the CPU, by name


class _CudaSide(registry.KernelTable):
    """Every kernel registered for CUDA devices (``cuda.sq_err``), resolved on first use, and the
    launcher module's own names (``cuda.launch``, its caches) as they are at that moment."""

    def __init__(self):
        super().__init__("cuda")

    def __getattr__(self, name: str):
        if name in registry.registered("cuda"):
            return super().__getattr__(name)
        return getattr(cuda_backend, name)


def _tol(dtype):
    return {"rtol": 2e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}


@pytest.fixture(scope="module")
def host():
    if harness.compiler() is None:
        pytest.skip("no C++ compiler to build the kernels for the host")
    return harness.host_library()


@pytest.mark.parametrize("ctype", ["float", "double"])
def test_the_kernel_modules_compile_for_the_gpu_with_nvrtc_one_compilation_each(ctype):
    """Every kernel of one dtype is in one of two sources, the step's and the rest: one NVRTC
    compilation each (per device and dtype), the first all a classification run's cold start
    pays for devgrad's own kernels. Each group's source compiles on its own, and together they
    hold every kernel once."""
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as exc:  # CuPy or its NVRTC library missing
        pytest.skip(f"NVRTC not available: {exc}")
    from devgrad.backend.cuda_sources import GROUPS, KERNELS, group_of

    entries = {}
    for group in GROUPS:
        program = nvrtc.createProgram(module_source((ctype,), group=group), "devgrad.cu", [], [])
        try:
            nvrtc.compileProgram(program, ["-arch=compute_80", "-std=c++17"])
        except Exception:
            pytest.fail(f"the {ctype} {group} kernel module does not compile:\n{nvrtc.getProgramLog(program)}")
        ptx = nvrtc.getPTX(program).decode(errors="replace")
        entries[group] = set(re.findall(r"\.entry (\w+)\(", ptx))
    assert entries["step"].isdisjoint(entries["more"])
    for name in [*ELEMENTWISE, *MULTI_KERNELS, "class_sums", "reg_errors", "gather_rows", "targets", "fill"]:
        assert function_name(name, ctype) in entries[group_of(name)], name
    assert len(entries["step"]) + len(entries["more"]) == len(KERNELS) + 1
    assert "devgrad_increment_steps" in entries["step"]
    assert {"devgrad_mul_" + ctype, "devgrad_sq_err_" + ctype} <= entries["more"]


def test_every_grid_stride_loop_of_the_module_stays_rolled():
    """NVRTC unrolling the grid-stride loops made the module take 2-3 times as long to compile
    (the cold start of a fresh machine) for nothing: each thread runs one iteration or a few.
    Every such loop carries the no-unroll pragma on the GPU; the host build ignores it."""
    from devgrad.backend import cuda_sources

    for ctype in ("float", "double"):
        code = module_source((ctype,))
        loops = re.findall(r"(\S+)\s*\n\s*for \(long long \w+ = \(long long\)blockIdx\.x", code)
        # the elementwise, multi-tensor and looped kernels, and the step counts' increment
        assert len(loops) == len(ELEMENTWISE) + len(MULTI_KERNELS) + len(cuda_sources._LOOPED) + 1
        assert set(loops) == {"DEVGRAD_NO_UNROLL"}
        assert '#define DEVGRAD_NO_UNROLL _Pragma("unroll 1")' in code
    host = module_source(("float",), host=True)
    assert host.index("#define DEVGRAD_NO_UNROLL\n") < host.index("#ifndef DEVGRAD_NO_UNROLL")


def _data(dtype, shape=(7, 5), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(4)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_kernel(host, dtype):
    x = np.array([-1e4, -30.0, -1.0, 0.0, 2.5, 1e4], dtype=dtype)
    y = np.zeros_like(x)
    harness.run_on_host("sigmoid", x=x, y=y)
    np.testing.assert_allclose(y, cpu_backend.sigmoid(x), **_tol(dtype))
    assert y[0] == 0.0 and y[-1] == 1.0  # saturates exactly, no inf or NaN


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_activation_gradient_kernels(host, act, dtype):
    g, z, *_ = _data(dtype)
    y = {"relu": np.maximum(z, 0), "sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z)}[act].astype(dtype)
    gz = np.zeros_like(y)
    harness.run_on_host(f"{act}_grad", g=g, y=y, gz=gz)
    np.testing.assert_allclose(gz, cpu_backend.act_grad(act, g, y), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "identity"])
def test_bias_activation_kernels(host, act, dtype):
    _, z, *_ = _data(dtype)
    z[0, :3] = [1e4, -1e4, 0.0]  # saturation and the kink must stay finite and exact
    b = np.random.default_rng(1).standard_normal(z.shape[1]).astype(dtype)
    y = z.copy()
    harness.run_on_host(f"bias_{act}", b=np.ascontiguousarray(np.broadcast_to(b, z.shape)), y=y)
    expected = cpu_backend.bias_act_(z.copy(), b, act)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, expected, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd,maximize", [(0.0, False), (0.1, False), (0.05, True)])
def test_sgd_kernel(host_cuda_backend, dtype, wd, maximize):
    """One tensor's update: the multi-tensor kernel over a table of one."""
    p, g, *_ = _data(dtype)
    expected = p.copy()
    cpu_backend.sgd_update(expected, g, None, np.empty_like(p), 0.1, 0.0, 0.0, wd, False, maximize, False)
    host_cuda_backend.sgd_update(p, g, None, None, 0.1, 0.0, 0.0, wd, False, maximize, False)
    np.testing.assert_allclose(p, expected, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dampening,nesterov,wd,first", [(0.0, False, 0.0, True), (0.0, False, 0.0, False),
                                                         (0.3, False, 0.01, False), (0.0, True, 0.01, False),
                                                         (0.0, True, 0.0, True)])
def test_sgd_momentum_kernel(host_cuda_backend, dtype, dampening, nesterov, wd, first):
    p, g, buf, _ = _data(dtype)
    expected_p, expected_buf = p.copy(), buf.copy()
    cpu_backend.sgd_update(expected_p, g, expected_buf, np.empty_like(p), 0.05, 0.9, dampening, wd, nesterov,
                           False, first)
    host_cuda_backend.sgd_update(p, g, buf, None, 0.05, 0.9, dampening, wd, nesterov, False, first)
    np.testing.assert_allclose(buf, expected_buf, **_tol(dtype))
    np.testing.assert_allclose(p, expected_p, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("wd,decoupled,maximize,step", [(0.0, False, False, 1), (0.1, False, False, 7),
                                                        (0.1, True, False, 3), (0.0, False, True, 12)])
def test_adam_kernels(host_cuda_backend, dtype, amsgrad, wd, decoupled, maximize, step):
    p, g, m, v = _data(dtype)
    v = np.abs(v)  # a second moment is never negative
    vmax = v * 1.5 if amsgrad else None
    expected = [a.copy() for a in (p, m, v)]
    expected_vmax = None if vmax is None else vmax.copy()
    cpu_backend.adam_update(expected[0], g, expected[1], expected[2], expected_vmax, np.empty_like(p), 1e-3, step,
                            0.9, 0.999, 1e-8, wd, decoupled, maximize)
    host_cuda_backend.adam_update(p, g, m, v, vmax, None, 1e-3, step, 0.9, 0.999, 1e-8, wd, decoupled, maximize)
    if amsgrad:
        np.testing.assert_allclose(vmax, expected_vmax, **_tol(dtype))
    for got, want in zip((p, m, v), expected):
        np.testing.assert_allclose(got, want, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_cross_entropy_kernels(host, dtype, smoothing):
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((9, 6)) * 3).astype(dtype)
    z[0] = [1e4, -1e4, 0, 0, 0, 0]  # stable for huge logits
    labels = rng.integers(0, 6, 9).astype(np.int64)
    loss, probs = np.zeros(9, dtype=dtype), np.zeros_like(z)
    harness.run_on_host("softmax_xent", z=z, labels=labels, n_classes=6, smoothing=smoothing, loss=loss, probs=probs)
    want_loss, want_probs = cpu_backend.softmax_xent(z, labels, smoothing)
    assert np.isfinite(loss).all()
    np.testing.assert_allclose(loss, want_loss, **_tol(dtype))
    np.testing.assert_allclose(probs, want_probs, **_tol(dtype))
    for g, scale in ((np.asarray(0.7, dtype=dtype), 1 / 9), (rng.standard_normal(9).astype(dtype), None)):
        gz = np.zeros_like(z)
        harness.run_on_host("softmax_xent_grad", p=probs, labels=labels, g=np.ascontiguousarray(g), n_classes=6,
                            smoothing=smoothing, scale=1.0 if scale is None else scale, per_row=scale is None,
                            gz=gz)
        np.testing.assert_allclose(gz, cpu_backend.softmax_xent_grad(probs, labels, smoothing, g, scale),
                                   **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [1.0, 2.5])
def test_binary_cross_entropy_kernels(host, dtype, pos_weight):
    """The fused BCE (with and without a pos_weight) on the host build: finite for logits of
    ±1e4, and what the CPU kernels and the formula pos_weight·y·softplus(−z) + (1 − y)·softplus(z)
    give, its gradient too."""
    rng = np.random.default_rng(4)
    z = (rng.standard_normal((6, 4)) * 4).astype(dtype)
    z[0, :2] = [1e4, -1e4]
    y = (rng.random((6, 4)) > 0.5).astype(dtype)
    y[5] = [0.25, 0.5, 0.75, 1.0]  # probabilities as targets
    loss = np.zeros_like(z)
    harness.run_on_host("bce_logits", z=z, y=y, pos_weight=pos_weight, loss=loss)
    assert np.isfinite(loss).all()
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    want = pos_weight * y64 * np.logaddexp(0, -z64) + (1 - y64) * np.logaddexp(0, z64)
    np.testing.assert_allclose(loss, want, **_tol(dtype))
    np.testing.assert_allclose(cpu_backend.bce_logits(z, y, pos_weight), want, **_tol(dtype))
    sig = 1 / (1 + np.exp(-np.clip(z64, -700, 700)))
    dz = (1 - y64) * sig - pos_weight * y64 * (1 - sig)
    for g, scale in ((np.asarray(1.3, dtype=dtype), 1 / 24), (rng.standard_normal(z.shape).astype(dtype), None)):
        gz = np.zeros_like(z)
        harness.run_on_host("bce_logits_grad", z=z, y=y, g=g, scale=1.0 if scale is None else scale,
                            per_element=scale is None, pos_weight=pos_weight, gz=gz)
        want_g = dz * (g if scale is None else g * scale)
        np.testing.assert_allclose(gz, want_g, **_tol(dtype))
        np.testing.assert_allclose(cpu_backend.bce_logits_grad(z, y, g, scale, pos_weight), want_g, **_tol(dtype))


@pytest.mark.parametrize("pos_weight", [1.0, 3.0])
def test_binary_cross_entropy_kernels_at_infinite_and_large_logits_give_the_cpus_values(host, pos_weight):
    """z = ±inf gives the limit (0 where the infinite term has no weight, else inf; never NaN), and
    the gradient's sigmoid(−z) is not 1 − sigmoid(z), which is 0 in double from z ≈ 37 on."""
    z = np.array([np.inf, np.inf, np.inf, -np.inf, -np.inf, -np.inf, 40.0, -40.0, 20.0])
    y = np.array([1.0, 0.0, 0.5, 1.0, 0.0, 0.5, 1.0, 0.0, 1.0])
    loss = np.zeros_like(z)
    harness.run_on_host("bce_logits", z=z, y=y, pos_weight=pos_weight, loss=loss)
    np.testing.assert_array_equal(np.isnan(loss), np.zeros(z.shape, bool))
    infinite = np.isinf(z)
    np.testing.assert_array_equal(loss[infinite], cpu_backend.bce_logits(z, y, pos_weight)[infinite])
    finite_z, finite_y = z[~infinite], y[~infinite]
    want = pos_weight * finite_y * np.logaddexp(0, -finite_z) + (1 - finite_y) * np.logaddexp(0, finite_z)
    np.testing.assert_allclose(loss[~infinite], want, rtol=1e-12)
    gz = np.zeros_like(z)
    harness.run_on_host("bce_logits_grad", z=z, y=y, g=np.ones_like(z), scale=1.0, per_element=True,
                        pos_weight=pos_weight, gz=gz)
    np.testing.assert_allclose(gz, cpu_backend.bce_logits_grad(z, y, np.ones_like(z), None, pos_weight), rtol=1e-12)


def test_softmax_cross_entropy_kernel_turns_a_bad_label_into_nan(host):
    """Labels are not range-checked on the GPU (a sync per step): a label outside [0, C) must give
    a NaN loss for its row, which the runner reports as divergence, not read outside the row."""
    z = np.zeros((3, 4), dtype=np.float32)
    labels = np.array([1, 4, -1], dtype=np.int64)
    loss, probs = np.zeros(3, dtype=np.float32), np.zeros_like(z)
    harness.run_on_host("softmax_xent", z=z, labels=labels, n_classes=4, smoothing=0.0, loss=loss, probs=probs)
    assert loss[0] == pytest.approx(np.log(4)) and np.isnan(loss[1:]).all()


@pytest.fixture
def host_cuda_backend(host, monkeypatch):
    """devgrad's CUDA backend functions with CuPy replaced by the host build of the kernels, so
    the Python side — argument order, dtypes, outputs — runs as it would on a GPU."""
    monkeypatch.setattr(cuda_backend, "module", harness.host_cupy)
    monkeypatch.setattr(cuda_backend, "address", harness.host_address)
    monkeypatch.setattr(cuda_backend, "_modules", {})
    monkeypatch.setattr(cuda_backend, "_functions", {})
    monkeypatch.setattr(cuda_backend, "_launched", set())
    monkeypatch.setattr(cuda_gemm, "module", harness.host_cupy)
    monkeypatch.setattr(cuda_gemm, "_ones", {})  # host ones vectors stay out of a GPU run's cache
    return _CudaSide()


def test_cuda_backend_functions_agree_with_the_numpy_backend(host_cuda_backend):
    cuda, rng = host_cuda_backend, np.random.default_rng(5)
    z = rng.standard_normal((6, 4)).astype(np.float32)
    g, y = rng.standard_normal((6, 4)).astype(np.float32), (rng.random((6, 4)) > 0.5).astype(np.float32)
    tol = _tol(np.float32)
    for act in ("relu", "sigmoid", "tanh"):
        out = cpu_backend.bias_act_(z.copy(), z[0], act)
        np.testing.assert_allclose(cuda.bias_act_(z.copy(), z[0], act), out, **tol)
        np.testing.assert_allclose(cuda.bias_act_(z.copy(), None, act), cpu_backend.bias_act_(z.copy(), None, act),
                                   **tol)
        # a float64 gradient meets a float32 output: CuPy needs one dtype per placeholder
        np.testing.assert_allclose(cuda.act_grad(act, g.astype(np.float64), out), cpu_backend.act_grad(act, g, out),
                                   **tol)
    np.testing.assert_allclose(cuda.sigmoid(z), cpu_backend.sigmoid(z), **tol)
    np.testing.assert_allclose(cuda.bce_logits(z, y), cpu_backend.bce_logits(z, y), **tol)
    scalar_g = np.asarray(0.5, dtype=np.float32)
    for upstream, scale in ((scalar_g, 0.25), (g, None)):
        np.testing.assert_allclose(cuda.bce_logits_grad(z, y, upstream, scale),
                                   cpu_backend.bce_logits_grad(z, y, upstream, scale), **tol)
    labels = rng.integers(0, 4, 6).astype(np.int32)  # int32 labels are widened for the kernel
    for smoothing in (0.0, 0.2):
        loss, probs = cuda.softmax_xent(z, labels, smoothing)
        want_loss, want_probs = cpu_backend.softmax_xent(z, labels, smoothing)
        np.testing.assert_allclose(loss, want_loss, **tol)
        np.testing.assert_allclose(probs, want_probs, **tol)
        for upstream, scale in ((scalar_g, 1 / 6), (g[:, 0].copy(), None)):
            np.testing.assert_allclose(cuda.softmax_xent_grad(probs, labels, smoothing, upstream, scale),
                                       cpu_backend.softmax_xent_grad(probs, labels, smoothing, upstream, scale), **tol)


@pytest.mark.parametrize("lr_on_device", [False, True], ids=["lr-number", "lr-0d-array"])
def test_cuda_backend_optimizer_updates_agree_with_the_numpy_backend(host_cuda_backend, lr_on_device):
    """Every argument lands in its kernel parameter: SGD (plain, momentum first and later steps,
    Nesterov) and Adam/AdamW/AMSGrad, with lr and the step count as numbers or as 0-d arrays
    (what a capturable optimizer passes)."""
    cuda = host_cuda_backend
    lr = np.asarray(0.05) if lr_on_device else 0.05
    step = np.asarray(3.0) if lr_on_device else 3
    tol = _tol(np.float32)
    for buf_kind, first, nesterov, wd, maximize in [(None, False, False, 0.1, True), ("buf", True, False, 0.0, False),
                                                    ("buf", False, True, 0.01, False)]:
        p, g, buf, _ = _data(np.float32, seed=7)
        mine = [p.copy(), None if buf_kind is None else buf.copy()]
        theirs = [p.copy(), None if buf_kind is None else buf.copy()]
        cuda.sgd_update(mine[0], g, mine[1], None, lr, 0.9 if buf_kind else 0.0, 0.0, wd, nesterov, maximize, first)
        cpu_backend.sgd_update(theirs[0], g, theirs[1], np.empty_like(p), 0.05, 0.9 if buf_kind else 0.0, 0.0, wd,
                               nesterov, maximize, first)
        for a, b in zip(mine, theirs):
            if a is not None:
                np.testing.assert_allclose(a, b, **tol)
    for amsgrad, wd, decoupled in [(False, 0.0, False), (True, 0.1, False), (False, 0.1, True)]:
        p, g, m, v = _data(np.float32, seed=8)
        v = np.abs(v)
        mine = [p.copy(), g, m.copy(), v.copy(), v * 2 if amsgrad else None]
        theirs = [p.copy(), g, m.copy(), v.copy(), v * 2 if amsgrad else None]
        cuda.adam_update(*mine, None, lr, step, 0.9, 0.999, 1e-8, wd, decoupled, False)
        cpu_backend.adam_update(*theirs, np.empty_like(p), 0.05, 3, 0.9, 0.999, 1e-8, wd, decoupled, False)
        for a, b in zip(mine, theirs):
            if a is not None:
                np.testing.assert_allclose(a, b, **tol)


def test_cuda_cross_entropy_with_many_classes_takes_the_vectorised_path(host_cuda_backend):
    """Rows longer than the per-row kernel's limit go through the vectorised form; both agree."""
    cuda, rng = host_cuda_backend, np.random.default_rng(6)
    c = nn_cuda.ROW_KERNEL_MAX_CLASSES + 1
    z = rng.standard_normal((5, c)).astype(np.float32)
    labels = rng.integers(0, c, 5)
    loss, probs = cuda.softmax_xent(z, labels, 0.1)
    want_loss, want_probs = cpu_backend.softmax_xent(z, labels, 0.1)
    np.testing.assert_allclose(loss, want_loss, **_tol(np.float32))
    np.testing.assert_allclose(probs, want_probs, **_tol(np.float32))
    g = np.asarray(1.0, dtype=np.float32)
    np.testing.assert_allclose(cuda.softmax_xent_grad(probs, labels, 0.1, g, 0.2),
                               cpu_backend.softmax_xent_grad(probs, labels, 0.1, g, 0.2), **_tol(np.float32))
    assert not {"softmax_xent", "softmax_xent_grad"} & cuda._launched  # the row kernels never ran


def test_cuda_kernels_cast_mixed_float_operands_as_numpy_promotes(host_cuda_backend):
    """float64 logits with float32 targets (and float32 upstream gradients) reach the kernels
    cast to one dtype: CuPy raises on a T placeholder bound to two dtypes, NumPy promotes. Found
    on an H100 with the BCE kernels; every wrapper is checked here."""
    cuda, rng = host_cuda_backend, np.random.default_rng(9)
    z = rng.standard_normal((5, 3))
    y32 = (rng.random((5, 3)) > 0.5).astype(np.float32)
    g32 = rng.standard_normal((5, 3)).astype(np.float32)
    tol = {"rtol": 1e-6, "atol": 1e-9}  # float32 inputs: NumPy rounds g·scale to float32, the kernels do not
    np.testing.assert_allclose(cuda.bce_logits(z, y32), cpu_backend.bce_logits(z, y32), **tol)
    for upstream, scale in ((np.asarray(0.5, dtype=np.float32), 0.2), (g32, None)):
        np.testing.assert_allclose(cuda.bce_logits_grad(z, y32, upstream, scale),
                                   cpu_backend.bce_logits_grad(z, y32, upstream, scale), **tol)
    labels = rng.integers(0, 3, 5)
    _, probs = cuda.softmax_xent(z, labels, 0.0)
    np.testing.assert_allclose(cuda.softmax_xent_grad(probs, labels, 0.0, g32[:, 0].copy(), None),
                               cpu_backend.softmax_xent_grad(probs, labels, 0.0, g32[:, 0], None), **tol)
    for act in ("relu", "sigmoid", "tanh"):
        out = cpu_backend.bias_act_(z.copy(), z[0].astype(np.float32), act)
        np.testing.assert_allclose(cuda.bias_act_(z.copy(), z[0].astype(np.float32), act), out, **tol)
        np.testing.assert_allclose(cuda.act_grad(act, g32, out), cpu_backend.act_grad(act, g32, out), **tol)


def _count_launches(monkeypatch, cuda):
    launches = []
    real = cuda_backend.function  # every launch of every owner's kernels goes through it

    def counting(fname, ctype):
        fn = real(fname, ctype)
        return lambda grid, block, args: (launches.append(fname), fn(grid, block, args))

    monkeypatch.setattr(cuda_backend, "function", counting)
    return launches


@pytest.mark.parametrize("capturable", [False, True], ids=["numbers", "device-counts"])
@pytest.mark.parametrize("amsgrad,wd,decoupled,maximize", [(False, 0.0, False, False), (True, 0.1, False, True),
                                                           (False, 0.05, True, False)])
def test_multi_tensor_adam_updates_every_tensor_as_the_one_tensor_update_does(host_cuda_backend, monkeypatch,
                                                                              capturable, amsgrad, wd, decoupled,
                                                                              maximize):
    """One launch per dtype for a whole group (35 tensors need two tables of 32), each tensor
    with its own step count (a number, or a 0-d float64 array a captured step reads), a
    strided gradient made contiguous, and a strided parameter taking the one-tensor path."""
    cuda, rng = host_cuda_backend, np.random.default_rng(11)
    launches = _count_launches(monkeypatch, cuda)
    shapes = [(rng.integers(1, 6), rng.integers(1, 9)) for _ in range(35)] + [(0, 3), (1,), ()]
    mine, theirs = [], []
    for k, shape in enumerate(shapes):
        dtype = np.float64 if k % 3 == 0 else np.float32
        p, g, m = (np.asarray(rng.standard_normal(shape), dtype=dtype) for _ in range(3))
        v = np.asarray(np.abs(rng.standard_normal(shape)), dtype=dtype)
        vmax = np.asarray(v * 1.5, dtype=dtype) if amsgrad else None
        if k == 4:
            g = np.asfortranarray(g)
        step = 1 + k % 5
        mine.append([p.copy(), g, m.copy(), v.copy(), None if vmax is None else vmax.copy(), None,
                     np.asarray(float(step)) if capturable else step])
        theirs.append([p.copy(), g, m.copy(), v.copy(), None if vmax is None else vmax.copy(), np.empty_like(p), step])
    r, c = theirs[7][0].shape
    strided = np.zeros((2 * r, 2 * c), dtype=theirs[7][0].dtype)[::2, ::2]
    strided[...] = theirs[7][0]
    mine[7][0] = strided
    lr = np.asarray(0.01) if capturable else 0.01
    cuda.adam_update_many([tuple(item) for item in mine], lr, 0.9, 0.999, 1e-8, wd, decoupled, maximize)
    cpu_backend.adam_update_many([tuple(item) for item in theirs], 0.01, 0.9, 0.999, 1e-8, wd, decoupled, maximize)
    for got, want in zip(mine, theirs):
        for a, b in zip(got[:5], want[:5]):
            if a is not None:
                np.testing.assert_allclose(a, b, **_tol(a.dtype))
        if capturable:
            assert float(got[6]) == want[6]  # counts are read, not advanced (increment_steps does that)
    # float32 and float64, each at most two tables, and a table of one for the strided parameter
    assert 2 <= len(launches) <= 5, launches
    assert set(launches) <= {"devgrad_adam_many_float", "devgrad_adam_many_double"}, launches


@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
def test_rmsprop_and_adagrad_multi_tensor_updates_take_strided_and_float16_tensors(host_cuda_backend, monkeypatch,
                                                                                    name):
    """A group of float32 and float64 tensors, one strided parameter and one float16 one: the
    contiguous float ones in one launch per dtype, the other two each through a working copy in
    the module's dtype (float16 computed in double, rounded once), against the NumPy backend."""
    cuda, rng = host_cuda_backend, np.random.default_rng(13)
    launches = _count_launches(monkeypatch, cuda)
    dtypes = [np.float32, np.float64, np.float32, np.float16, np.float64]
    mine, theirs = [], []
    for k, dtype in enumerate(dtypes):
        p, g, a, b, c = (rng.standard_normal((3, 4)).astype(dtype) for _ in range(5))
        a = (np.abs(a) + c * c).astype(dtype)  # a mean of squares >= the mean's square (centered RMSprop)
        state = [a, b, c] if name == "rmsprop" else [a, 1 + k % 3]
        mine.append([p.copy(), g, *(s.copy() if isinstance(s, np.ndarray) else s for s in state)])
        wide = np.float64 if dtype == np.float16 else dtype  # float16: the update computed in double
        theirs.append([p.astype(wide), g.astype(wide), *(s.astype(wide) if isinstance(s, np.ndarray) else s
                                                          for s in state)])
    strided = np.zeros((6, 8), dtype=np.float32)[::2, ::2]
    strided[...] = mine[2][0]
    mine[2][0] = strided
    if name == "rmsprop":
        args = (0.01, 0.9, 1e-8, 0.01, 0.5, True, False)
        cuda.rmsprop_update_many([tuple(i) for i in mine], *args)
        cpu_backend.rmsprop_update_many([tuple(i) for i in theirs], *args)
    else:
        args = (0.01, 0.1, 0.01, 1e-10, True)
        cuda.adagrad_update_many([tuple(i) for i in mine], *args)
        cpu_backend.adagrad_update_many([tuple(i) for i in theirs], *args)
    for got, want, dtype in zip(mine, theirs, dtypes):
        for a, b in zip(got, want):
            if isinstance(a, np.ndarray):
                assert a.dtype == dtype
                if dtype == np.float16:  # rounded once from the double computation
                    np.testing.assert_allclose(a, b.astype(np.float16), rtol=1e-3, atol=1e-4)
                else:
                    np.testing.assert_allclose(a, b, **_tol(dtype))
    # float32 and float64 groups, then the strided and the float16 tensor one by one
    assert len(launches) == 4 and set(launches) == {f"devgrad_{name}_many_float", f"devgrad_{name}_many_double"}


def test_multi_tensor_sgd_and_device_step_counts(host_cuda_backend, monkeypatch):
    cuda, rng = host_cuda_backend, np.random.default_rng(12)
    launches = _count_launches(monkeypatch, cuda)
    steps = [np.asarray(float(k)) for k in range(40)]
    cuda.increment_steps(steps)
    assert [float(s) for s in steps] == [k + 1.0 for k in range(40)]
    assert launches == ["devgrad_increment_steps"] * 2  # 40 counts: two tables
    for momentum, nesterov, dampening in ((0.0, False, 0.0), (0.9, True, 0.0), (0.9, False, 0.3)):
        mine, theirs = [], []
        for k in range(6):
            p, g, buf = (rng.standard_normal((3, k + 1)).astype(np.float32) for _ in range(3))
            first = momentum > 0 and k % 2 == 0
            mine.append((p.copy(), g, buf.copy() if momentum else None, None, first))
            theirs.append((p.copy(), g, buf.copy() if momentum else None, np.empty_like(p), first))
        launches.clear()
        cuda.sgd_update_many(mine, 0.1, momentum, dampening, 0.01, nesterov, False)
        cpu_backend.sgd_update_many(theirs, 0.1, momentum, dampening, 0.01, nesterov, False)
        for got, want in zip(mine, theirs):
            for a, b in zip(got[:3], want[:3]):
                if a is not None:
                    np.testing.assert_allclose(a, b, **_tol(np.float32))
        assert len(launches) == (2 if momentum else 1), launches  # first-step buffers apart from the others


def test_launch_broadcasts_and_writes_back_like_an_elementwise_kernel(host_cuda_backend):
    """A bias of the last axis reads element i % size; other broadcasts are materialised; a
    strided output is computed aside and copied back; mismatched T dtypes raise as CuPy does."""
    cuda, rng = host_cuda_backend, np.random.default_rng(13)
    z = rng.standard_normal((5, 4)).astype(np.float32)
    column = rng.standard_normal((5, 1)).astype(np.float32)
    out = z.copy()
    cuda.launch("bias_relu", column, out)
    np.testing.assert_allclose(out, np.maximum(z + column, 0), rtol=1e-6)
    wide = np.zeros((5, 8), dtype=np.float32)
    strided = wide[:, ::2]
    strided[...] = z
    cuda.launch("bias_tanh", z[0], strided)
    np.testing.assert_allclose(wide[:, ::2], np.tanh(z + z[0]), rtol=1e-6)
    assert not wide[:, 1::2].any()
    with pytest.raises(TypeError, match="mismatched"):
        cuda.launch("relu_grad", z, z.astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_class_sums_counts_what_numpy_counts_and_adds_the_loss(host_cuda_backend, dtype):
    """The runner's per-batch sums in one kernel: hits as NumPy's argmax (first of tied maxima, a
    NaN counting as the maximum) or, for one output, output > threshold; the loss × rows added
    in float64. Each case goes through the CUDA launcher and the CPU kernel, and both equal the
    NumPy formula."""
    cuda, rng = host_cuda_backend, np.random.default_rng(11)
    z = rng.integers(-2, 3, (64, 5)).astype(dtype)  # small integers: many ties
    z[3, 2] = z[7, 0] = z[7, 4] = np.nan
    z[9, :] = np.nan
    labels = rng.integers(0, 5, 64)
    cases = [(z, labels, 0.0), (z[:, ::2], labels % 3, 0.0),  # a strided view: made contiguous
             (z[:, :1] / 4, labels % 2, 0.0), (z[:, :1] / 4, (labels % 2).astype(np.int32), 0.5),
             (z[:0], labels[:0], 0.0)]
    for outputs, y, threshold in cases:
        if outputs.shape[1] == 1:
            want = int(np.count_nonzero((outputs[:, 0] > threshold) == y))
        else:
            want = int(np.count_nonzero(outputs.argmax(axis=1) == y))
        loss = np.asarray(0.375, dtype=dtype)
        for kernels in (cuda, cpu_backend):
            loss_sum, hits = np.full((), 1.5), np.full((), 2, dtype=np.int64)
            kernels.class_sums(outputs, y, loss, len(outputs), threshold, loss_sum, hits)
            assert int(hits) == 2 + want, (kernels.__name__, outputs.shape, threshold)
            assert float(loss_sum) == 1.5 + 0.375 * len(outputs)
    with pytest.raises(TypeError, match="float64 and int64"):
        cuda.class_sums(z, labels, np.asarray(0.5, dtype=dtype), 64, 0.0, np.zeros((), np.float32),
                        np.zeros((), np.int64))


def test_gather_rows_picks_rows_of_any_dtype_as_numpy_indexing_does(host_cuda_backend, monkeypatch):
    """The loader's shuffle in one word-copying launch, for float32/float64 features and int64 or
    int32 labels alike (the float module serves them all), repeats and any order included; rows
    that are not whole 32-bit words, strided arrays and empty picks take CuPy's indexing."""
    cuda, rng = host_cuda_backend, np.random.default_rng(3)
    index = rng.permutation(37)[:29]
    index[3] = index[10]  # a row picked twice
    launches = _count_launches(monkeypatch, cuda)
    for src in (rng.standard_normal((37, 5)).astype(np.float32), rng.standard_normal((37, 2, 3)),
                rng.integers(-2**40, 2**40, 37), rng.integers(0, 9, 37).astype(np.int32),
                np.arange(37.0), rng.standard_normal((37, 3)).astype(np.float32)):
        before = len(launches)
        got = cuda.gather_rows(src, index)
        np.testing.assert_array_equal(got, src[index])
        assert got.dtype == src.dtype and len(launches) == before + 1, src.dtype
    for src in (rng.integers(0, 2, (37, 3)).astype(np.uint8), rng.standard_normal((37, 6))[:, ::2]):
        before = len(launches)
        np.testing.assert_array_equal(cuda.gather_rows(src, index), src[index])
        assert len(launches) == before  # not whole words, or strided: CuPy's take
    assert cuda.gather_rows(rng.standard_normal((4, 2)), index[:0]).shape == (0, 2)
    np.testing.assert_array_equal(cpu_backend.gather_rows(np.arange(5.0), np.array([4, 0])), [4.0, 0.0])



def test_fill_and_full_write_the_value_in_every_dtype(host_cuda_backend, monkeypatch):
    """The backward's seed, the ones vector of the GEMM sums and a capturable optimizer's rate and
    step counts come from ``full``/``fill_``: devgrad's kernel for float arrays (a value that is
    not zero), CuPy's fill otherwise, the same values as NumPy's either way. The kernel writes the
    value's words, so the module this GPU already built serves both float dtypes: a float32 run's
    float64 scalars compile no float64 module."""
    cuda = host_cuda_backend
    launches = _count_launches(monkeypatch, cuda)
    cases = [((3, 4), 1.0, np.float32), ((), 0.001, np.float64), (7, -2.5, np.float64), ((5,), 1e300, np.float64),
             ((3,), -1.5e-40, np.float32), ((2, 2), 3, np.int64), ((0,), 1.0, np.float32), ((5,), 0.0, np.float32)]
    for kernels in (cuda, cpu_backend):
        for shape, value, dtype in cases:
            got = kernels.full(shape, value, dtype)
            np.testing.assert_array_equal(got, np.full(shape, value, dtype=dtype))
            assert got.dtype == dtype
        strided = np.zeros((4, 6))[:, ::2]
        kernels.fill_(strided, 0.5)
        assert (strided == 0.5).all()
    # the first fill built the float module; the float64 ones ran on it
    assert launches == ["devgrad_fill_float"] * 5 and list(cuda._modules) == [(0, "float", "step")]
    cuda._modules.clear()
    cuda._functions.clear()
    np.testing.assert_array_equal(cuda.full(3, 0.1, np.float64), np.full(3, 0.1))
    assert launches[-1] == "devgrad_fill_double" and list(cuda._modules) == [(0, "double", "step")]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_is_one_kernel_forward_and_one_backward_with_the_numpy_backends_bits(host_cuda_backend, monkeypatch,
                                                                                    dtype):
    """Dropout's mask from uniform draws (draws equal to p, rounded to the dtype as NumPy compares
    with a Python float, are kept) and the product with it in one launch, the product with the
    mask backward in another: bit for bit what the NumPy backend gives. cuRAND's draws are taken
    as they come, in (0, 1]: a draw of exactly 1 counts as 0 (dropped), as it would once moved
    into [0, 1)."""
    cuda = host_cuda_backend
    launches = _count_launches(monkeypatch, cuda)
    p = 0.7  # float32(0.7) < 0.7: a draw equal to it is kept in float32, would be dropped in double
    u = np.random.default_rng(4).random((9, 8)).astype(dtype)
    u[0, :3] = [dtype(p), np.nextafter(dtype(p), dtype(0)), 0.0]
    x = np.random.default_rng(5).standard_normal(u.shape).astype(dtype)
    (mask, y), (want_mask, want_y) = cuda.dropout_(u.copy(), x, p), cpu_backend.dropout_(u.copy(), x, p)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(y, want_y)
    assert mask[0, 0] == dtype(1 / (1 - p)) and mask[0, 1] == mask[0, 2] == 0
    g = np.random.default_rng(6).standard_normal(u.shape).astype(dtype)
    np.testing.assert_array_equal(cuda.mul(g, mask), cpu_backend.mul(g, want_mask))
    ctype = "float" if dtype == np.float32 else "double"
    assert launches == [f"devgrad_dropout_{ctype}", f"devgrad_mul_{ctype}"]
    top = np.array([1.0, 1.0, 0.75], dtype=dtype)  # cuRAND's top draw, twice, and one that is kept
    mask, y = cuda.dropout_(top, np.full(3, 2.0, dtype=dtype), 0.5)
    np.testing.assert_array_equal(mask, [0, 0, 2])
    np.testing.assert_array_equal(y, [0, 0, 4])


def test_uniform_draws_come_from_curand_into_zero_one_through_devgrads_kernel(host_cuda_backend, monkeypatch):
    """The CUDA backend's uniform draws (dropout's): cuRAND's raw draws, in (0, 1], with a draw
    of 1 made 0 by devgrad's kernel (as CuPy's random_sample does with a kernel of its own, one
    more compilation on a fresh machine); a CuPy without the raw call uses its own sampler."""
    import contextlib
    import types

    from devgrad.backend import cupy as cuda_module

    launches = _count_launches(monkeypatch, host_cuda_backend)
    stand_in = host_cuda_backend.module()
    stand_in.cuda = types.SimpleNamespace(Device=lambda index: contextlib.nullcontext())
    monkeypatch.setattr(cuda_module, "module", lambda: stand_in)
    gpu = cuda_module.open_device(0)
    raw = np.array([[1.0, 0.25, 1.0], [0.5, 1e-7, 0.999]])

    class Generator:
        def _random_sample_raw(self, shape, dtype):
            return raw.astype(dtype).reshape(shape)

        def random_sample(self, shape, dtype=np.float64):
            return np.full(shape, 0.125, dtype=dtype)

    for dtype in (np.float32, np.float64):
        got = gpu.uniform(Generator(), (2, 3), dtype)
        assert got.dtype == dtype and ((got >= 0) & (got < 1)).all()
        np.testing.assert_array_equal(got, np.where(raw == 1, 0, raw).astype(dtype))
    assert launches == ["devgrad_wrap_top_float", "devgrad_wrap_top_double"]
    # dropout's draws: cuRAND's as they come (its kernel counts a 1 as a 0), no launch
    np.testing.assert_array_equal(gpu.uniform(Generator(), (2, 3), np.float32, half_open=False),
                                  raw.astype(np.float32))
    assert launches == ["devgrad_wrap_top_float", "devgrad_wrap_top_double"]

    class OtherCupysGenerator:
        random_sample = Generator.random_sample

    np.testing.assert_array_equal(gpu.uniform(OtherCupysGenerator(), (4,), np.float32), [0.125] * 4)
    assert gpu.uniform(OtherCupysGenerator(), (4,), np.float16).dtype == np.float16
    assert len(launches) == 2
    try:  # where CuPy is installed (a GPU or not): its generator still has the raw call
        import cupy
    except ImportError:
        return
    assert callable(getattr(cupy.random.RandomState, "_random_sample_raw", None))


def test_a_ready_made_module_for_the_gpus_architecture_is_loaded_instead_of_compiled(tmp_path, monkeypatch):
    """With 'devgrad warmup --arch 80' output in the kernel cache, a GPU of compute capability 8.0
    loads that module; without it, or when the file does not load, the source is compiled (the
    latter with a warning naming the file)."""
    made = []

    class FakeRawModule:
        broken = False

        def __init__(self, code=None, path=None, options=()):
            made.append("path" if path else "code")
            self.path = path

        def get_function(self, name):
            if self.path and FakeRawModule.broken:
                raise RuntimeError("CUDA_ERROR_INVALID_IMAGE")
            return name

    fake = types.SimpleNamespace(RawModule=FakeRawModule, cuda=types.SimpleNamespace(
        Device=lambda *a: types.SimpleNamespace(compute_capability="80"),
        runtime=types.SimpleNamespace(getDevice=lambda: 0)))
    monkeypatch.setattr(cuda_backend, "module", lambda: fake)
    monkeypatch.setattr(cuda_backend, "kernel_cache_dir", lambda: tmp_path)

    def load():
        monkeypatch.setattr(cuda_backend, "_modules", {})
        monkeypatch.setattr(cuda_backend, "_functions", {})
        made.clear()
        return cuda_backend.function("devgrad_fill_float", "float")

    assert load().fn == "devgrad_fill_float" and made == ["code"]
    cuda_backend.prebuilt_path(tmp_path, "float", "90").write_bytes(b"\x7fELF")  # another architecture
    load()
    assert made == ["code"]
    cuda_backend.prebuilt_path(tmp_path, "float", "80").write_bytes(b"\x7fELF")
    load()
    assert made == ["path"]
    FakeRawModule.broken = True
    with pytest.warns(RuntimeWarning, match="could not load the ready-made kernels"):
        load()
    assert made == ["path", "code"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_reg_sums_add_the_loss_and_the_squared_and_absolute_errors(host_cuda_backend, dtype, monkeypatch):
    """The runner's regression sums: one kernel (errors, their signs, the loss) and two cuBLAS dot
    products adding into the float64 sums (beta = 1), equal to NumPy's formula; a NaN output
    makes both error sums NaN, as NumPy's would."""
    cuda, rng = host_cuda_backend, np.random.default_rng(4)
    monkeypatch.setattr(cublas, "_state", {"library": None, "handles": {}})
    cublas.load(cublas_harness.library_path())
    for name, value in {"device_index": lambda a: 0, "current_stream": lambda: 0x5000,
                        "capturing": lambda: False}.items():
        monkeypatch.setattr(cuda_gemm, name, value)
    out = rng.standard_normal((33, 1)).astype(dtype)
    y = rng.standard_normal(33)
    loss = np.asarray(0.25, dtype=dtype)
    for kernels in (cuda, cpu_backend):
        sums = [np.full((), v) for v in (1.0, 2.0, 3.0)]
        kernels.reg_sums(out, y, loss, 33, *sums)
        error = out.reshape(-1).astype(np.float64) - y
        np.testing.assert_allclose([float(s) for s in sums],
                                   [1.0 + 0.25 * 33, 2.0 + (error ** 2).sum(), 3.0 + np.abs(error).sum()], rtol=1e-12)
        bad = out.copy()
        bad[5, 0] = np.nan
        sums = [np.zeros(()) for _ in range(3)]
        kernels.reg_sums(bad, y, loss, 33, *sums)
        assert np.isfinite(float(sums[0])) and np.isnan(float(sums[1])) and np.isnan(float(sums[2]))
        empty = [np.zeros(()) for _ in range(3)]
        kernels.reg_sums(out[:0], y[:0], loss, 0, *empty)
        assert [float(s) for s in empty] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_targets_from_labels_and_values_as_numpy_forms_them(host_cuda_backend, monkeypatch, dtype):
    """A loss's targets in one launch: the labels as numbers (BCE), as ±1 margins (logistic,
    hinge), one-hot rows (mse on classes), and regression values cast to the run's dtype; the
    same arrays as NumPy's formulas."""
    cuda, rng = host_cuda_backend, np.random.default_rng(8)
    launches = _count_launches(monkeypatch, cuda)
    labels = rng.integers(0, 4, 23)
    values = rng.standard_normal(23) * 1e3
    cases = [(labels, "value"), (labels, "sign"), (labels, "one_hot"), (values, "value"), (values, "sign"),
             (labels.reshape(23, 1), "value")]
    for y, mode in cases:
        got = cuda.targets(y, mode, 4, dtype)
        want = cpu_backend.targets(y, mode, 4, dtype)
        assert got.dtype == dtype and got.shape == want.shape, (mode, y.dtype)
        np.testing.assert_array_equal(got, want)
    assert len(launches) == len(cases) - (dtype == np.float64)  # float64 values in float64: no copy
    assert cuda.targets(values, "value", 4, np.float64) is values
    ints = labels.astype(np.int32)  # another dtype: CuPy's formula
    np.testing.assert_array_equal(cuda.targets(ints, "sign", 4, dtype), (ints * 2 - 1).astype(dtype))


# name: (params, loss formula, dloss/dx formula) in NumPy, op by op
PAIR_LOSSES = {
    "sq_err": ((), lambda x, y: (x - y) ** 2, lambda x, y: 2 * (x - y)),
    "abs_err": ((), lambda x, y: np.abs(x - y), lambda x, y: np.sign(x - y)),
    "huber_err": ((0.6,), lambda x, y: np.where(np.abs(x - y) <= 0.6, 0.5 * (x - y) ** 2, 0.6 * (np.abs(x - y) - 0.3)),
                  lambda x, y: np.clip(x - y, -0.6, 0.6)),
    "logistic": ((), lambda x, y: np.logaddexp(0, -y * x), lambda x, y: -y / (1 + np.exp(y * x))),
    "hinge": ((1.5,), lambda x, y: np.maximum(1.5 - y * x, 0), lambda x, y: -y * (1.5 - y * x >= 0)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(PAIR_LOSSES))
def test_pair_loss_kernels(host_cuda_backend, dtype, name):
    """Each per-element loss (mse, mae, Huber, logistic, hinge) as one kernel, and its gradient
    times a per-element or scalar upstream gradient and scale, through the CUDA launcher (targets
    of another float dtype cast first): equal to the CPU kernels and to NumPy's formula, on the
    kinks (x = y, |x − y| = delta, margin − y·x = 0) too, and a NaN gives a NaN loss."""
    cuda, rng = host_cuda_backend, np.random.default_rng(6)
    params, loss_formula, grad_formula = PAIR_LOSSES[name]
    x = (rng.standard_normal((6, 4)) * 3).astype(dtype)
    y = rng.standard_normal((6, 4)).astype(dtype)
    if name in ("logistic", "hinge"):
        y = np.where(y > 0, 1, -1).astype(dtype)
        x[0, :2] = 1.5 * y[0, :2]  # on the hinge's kink
    x[1, 0], x[1, 1] = y[1, 0], y[1, 1] + dtype(0.5)  # x = y, and |x − y| a power of two away
    x[1, 2] = y[1, 2] + dtype(0.6)  # |x − y| at delta (up to rounding)
    for target in (y, y.astype(np.float32 if dtype == np.float64 else np.float64)):
        np.testing.assert_allclose(getattr(cuda, name)(x, target, *params), loss_formula(x, target.astype(dtype)),
                                   **_tol(dtype))
    np.testing.assert_allclose(getattr(cpu_backend, name)(x, y, *params), loss_formula(x, y), **_tol(dtype))
    for g, scale in ((np.asarray(1.3, dtype=dtype), 1 / 24), (rng.standard_normal(x.shape).astype(dtype), None)):
        want = grad_formula(x, y) * (g if scale is None else g * scale)
        for kernels in (cuda, cpu_backend):
            got = getattr(kernels, name + "_grad")(x, y, g, scale, *params)
            assert got.dtype == dtype and got.shape == x.shape
            np.testing.assert_allclose(got, want, **_tol(dtype))
    bad = x.copy()
    bad[2, 3] = np.nan
    for kernels in (cuda, cpu_backend):
        loss = getattr(kernels, name)(bad, y, *params)
        assert np.isnan(loss[2, 3]) and np.isfinite(np.delete(loss.ravel(), 11)).all()


@pytest.mark.parametrize("group", ["step", "more"])
@pytest.mark.parametrize("ctype", ["float", "double"])
def test_every_kernel_compiles_for_an_h100_without_local_memory(ctype, group):
    """NVRTC (no GPU needed) compiles each module for sm_90 and ptxas reports, for every kernel, no
    stack frame and no spills: nothing goes through local memory. The multi-tensor updates take their
    table of tensors (2 KB) by value and index it per element; had the compiler copied it to a stack
    frame, every thread would copy 2 KB before its first element."""
    from tests.experiment.test_warmup import _nvrtc_or_skip

    _nvrtc_or_skip()
    from cupy_backends.cuda.libs import nvrtc

    source = module_source((ctype,), group=group)
    program = nvrtc.createProgram(source, "devgrad_kernels.cu", [], [])
    try:
        nvrtc.compileProgram(program, ["-arch=sm_90", "--ptxas-options=-v", *cuda_backend.NVRTC_OPTIONS])
        log = nvrtc.getProgramLog(program)
    finally:
        nvrtc.destroyProgram(program)
    entries = re.findall(r"Compiling entry function '(\w+)'", log)
    # every function's properties: the kernels' and those of the device functions they call (pow's)
    frames = dict(re.findall(r"Function properties for (\w+)\n.*?(\d+ bytes stack frame, \d+ bytes spill stores, "
                             r"\d+ bytes spill loads)", log))
    assert len(entries) == source.count("__global__") > 10 and set(entries) <= set(frames), log[-2000:]
    assert {name: frame for name, frame in frames.items()
            if frame != "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads"} == {}, log


def test_the_host_build_refuses_arguments_a_gpu_would_misread():
    """CuPy packs a launch's arguments by their own types, not the kernel's declaration, so the host
    build checks every launch against the declaration (the host's C calling convention would
    often hide a mismatch: an int64 where an int is declared arrives intact on the host and shifts
    every later parameter on a GPU). Each kernel's parameters are known, and the usual mistakes
    are refused by name."""
    source = module_source(("float",), group="step") + module_source(("float",), group="more")
    declared = harness.signatures(source)
    assert len(declared) == source.count("__global__") and declared["devgrad_fill_float"] == [
        ("lo", "unsigned int"), ("hi", "unsigned int"), ("out", "unsigned int*"), ("n", "long long")]
    params = declared["devgrad_sigmoid_float"]  # x_data, x_size, y_data, y_size, n
    x, y = np.ones(4, np.float32), np.zeros(4, np.float32)
    harness.check_arguments("devgrad_sigmoid_float", params, (x, np.int64(4), y, np.int64(4), np.int64(4)))
    for args, message in [
        ((x, np.int32(4), y, np.int64(4), np.int64(4)), "long long x_size needs a int64"),
        ((x.astype(np.float64), np.int64(4), y, np.int64(4), np.int64(4)), "T\\* x_data \\(float32 data\\) got"),
        ((x, 4, y, np.int64(4), np.int64(4)), "needs a int64 .* got int"),
        ((x, np.int64(4), y, np.int64(4)), "4 arguments for 5 parameters"),
    ]:
        with pytest.raises(TypeError, match=message):
            harness.check_arguments("devgrad_sigmoid_float", params, args)
    adam = declared["devgrad_adam_many_float"]
    table = np.zeros(1, dtype=optim_cuda.TABLE_DTYPE)
    good = [table, np.uint64(0), np.float64(0.1), *[np.float64(0.9)] * 4, *[np.int32(0)] * 3, np.int64(4)]
    harness.check_arguments("devgrad_adam_many_float", adam, good)
    with pytest.raises(TypeError, match="devgrad_table passed by value"):
        harness.check_arguments("devgrad_adam_many_float", adam, [table.view(np.uint64), *good[1:]])
    with pytest.raises(TypeError, match="int decoupled needs a int32"):
        harness.check_arguments("devgrad_adam_many_float", adam, [*good[:7], np.int64(0), *good[8:]])
