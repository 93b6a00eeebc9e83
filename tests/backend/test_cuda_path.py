"""A whole training step through the CUDA backend's Python, checked on a machine without a GPU.

The other backend tests check the CUDA side piece by piece (each kernel, each launcher, the
GEMM seam). Here the CPU device is given the CUDA backend's kernels and GEMM seam, with CuPy's
RawModule replaced by the host build of the very same kernel source (``kernel_harness``) and
cuBLAS by a host library with cuBLAS's C ABI (``cublas_harness``). An MLP then trains through
the code a GPU runs — the fused bias+activation, the fused losses and their gradients, the
activation gradients, the bias sums as GEMMs, the multi-tensor optimizer launches — and must
end with the weights the NumPy backend gives. The same run counts what a step launches: on a
GPU every launch costs host time, so the count is a budget.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import devgrad as dg
import devgrad.nn.functional as F
from devgrad import bench
from devgrad.backend import cublas, cuda_gemm, cuda_kernels, registry
from devgrad.backend import numpy as cpu_module
from devgrad.experiment import memory, neurons, resolve, run
from devgrad.experiment.console import close_logger, run_logger
from devgrad.experiment.plan import make_plan
from devgrad.experiment.trainer import Trainer

from tests.support import cublas_harness
from tests.support import kernel_harness as harness

# The CPU device here computes through the CUDA kernels, which a CPU replay plan cannot record:
# the capture's first-replay check finds the difference and the step runs eagerly, with a warning.
# On a GPU the step is captured into a CUDA graph instead (the capture tests cover both).
pytestmark = pytest.mark.filterwarnings("ignore:CapturedStep. could not capture the step for replay on the CPU")

STEPS = 4
ROOT = Path(__file__).resolve().parents[2]


class _Recorded(np.ndarray):
    """A NumPy array that notes every ufunc (operators and reductions included) and NumPy
    function applied to it while ``_Recorded.ops`` is a list: on a GPU each would be a CuPy
    kernel, compiled on a fresh machine. Results stay ``_Recorded``; an ``out=`` array is
    returned as itself, so in-place operators keep their target."""

    ops: list | None = None
    capturing = False  # while a step is "captured" (see the capture audit), reading a value is refused

    def _host_read(self, what: str):
        if _Recorded.capturing:
            raise AssertionError(f"{what} of a device array while a step was captured: on a GPU a host sync, "
                                 "which breaks the capture")

    def __float__(self):
        self._host_read("float()")
        return float(_plain(self))

    def __int__(self):
        self._host_read("int()")
        return int(_plain(self))

    def __bool__(self):
        self._host_read("bool()")
        return bool(_plain(self))

    def item(self, *args):
        self._host_read(".item()")
        return _plain(self).item(*args)

    def tolist(self):
        self._host_read(".tolist()")
        return _plain(self).tolist()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if _Recorded.ops is not None:
            _Recorded.ops.append(f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__)
        outs = kwargs.get("out")
        if outs:
            kwargs["out"] = tuple(_plain(o) for o in outs)
        result = getattr(ufunc, method)(*(_plain(i) for i in inputs), **kwargs)
        if outs:
            return outs[0] if len(outs) == 1 else outs
        return _recorded(result)

    def __array_function__(self, func, types, args, kwargs):
        if _Recorded.ops is not None:
            _Recorded.ops.append("memcpy" if func is np.copyto and _is_memcpy(*args) else func.__name__)
        return _recorded(func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()}))

    @property
    def base(self):
        """The base the array had before it was made a _Recorded view (None for an array that
        owns its memory, as on the device), else the view's own base."""
        return self.__dict__.get("_owner_base", np.ndarray.base.__get__(self))

    # The methods that are kernels on a GPU too (a view or a reshape is not).
    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if _Recorded.ops is not None and (copy or np.dtype(dtype) != self.dtype):
            _Recorded.ops.append("astype")
        return _recorded(_plain(self).astype(dtype, order=order, casting=casting, copy=copy))

    def copy(self, order="C"):
        if _Recorded.ops is not None:
            _Recorded.ops.append("copy")
        return _recorded(_plain(self).copy(order=order))

    def fill(self, value):
        if _Recorded.ops is not None:  # CuPy fills a contiguous array with zeros by a memset
            _Recorded.ops.append("memset" if value == 0 and self.flags.c_contiguous else "fill")
        _plain(self).fill(value)

    def __getitem__(self, key):
        parts = key if isinstance(key, tuple) else (key,)
        if _Recorded.ops is not None and any(isinstance(k, np.ndarray | list) for k in parts):
            _Recorded.ops.append("take")  # fancy indexing gathers: a kernel
        return _recorded(_plain(self)[_plain(key)])

    def __setitem__(self, key, value):
        if _Recorded.ops is not None:
            _Recorded.ops.append("setitem")
        _plain(self)[_plain(key)] = _plain(value)


def _is_memcpy(dst, src, *_) -> bool:
    """Whether CuPy's copyto(dst, src) is a memcpy: one dtype and shape, both C-contiguous."""
    return (isinstance(src, np.ndarray) and dst.dtype == src.dtype and dst.shape == src.shape
            and dst.flags.c_contiguous and src.flags.c_contiguous)


def _plain(value):
    if isinstance(value, _Recorded):
        return value.view(np.ndarray)
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def _recorded(value):
    if isinstance(value, np.generic):  # CuPy: an op on 0-d arrays gives a 0-d array, never a NumPy scalar
        value = np.asarray(value)
    elif type(value) is not np.ndarray:
        return value
    view = value.view(_Recorded)
    view._owner_base = value.base
    return view


def _device_address(array) -> int:
    """``cuda_kernels.address`` in the recording runs: the address of device memory only (a cuBLAS
    operand, an array a multi-tensor table points to); a host array's would be meaningless on a GPU."""
    if not isinstance(array, _Recorded):
        raise TypeError(f"the address of a host array ({type(array).__name__} {array.dtype} {array.shape}) was taken "
                        "for the GPU: cuBLAS and the kernels' tables read device memory")
    return harness.host_address(array)


def _device_copy(array):
    """``Device.copy`` as the CUDA backend does it: a memcpy for a contiguous array (no kernel),
    CuPy's copy kernel otherwise."""
    if _Recorded.ops is not None:
        _Recorded.ops.append("memcpy" if array.flags.c_contiguous else "copy")
    return _recorded(_plain(array).copy())


class _RecordingNumpy:
    """NumPy as an array module whose arrays are ``_Recorded`` (what ``xp`` and the CUDA backend's
    ``cupy`` are during the recording test)."""

    RawModule = harness.HostRawModule
    ndarray = np.ndarray

    def __init__(self, cuda=None):
        self.cuda = cuda

    def __getattr__(self, name):
        attr = getattr(np, name)
        if not callable(attr) or isinstance(attr, type | np.ufunc):
            return attr

        def call(*args, **kwargs):
            return _recorded(attr(*args, **kwargs))

        return call


@pytest.fixture
def cuda_path(monkeypatch):
    """A function that runs ``fn()`` with the CPU device computing through the CUDA backend's
    kernels and GEMM seam (on their host builds); returns (fn's result, kernel launches by name,
    cuBLAS calls)."""
    if harness.compiler() is None:
        pytest.skip("no C++ compiler to build the host kernels")
    library = cublas_harness.library_path()
    recorder = cublas_harness.Recorder(library)
    cpu = dg.device("cpu")

    def run(fn, record_arrays: bool = False):
        with monkeypatch.context() as patch:
            if record_arrays:  # every array of the device a _Recorded one
                host = _RecordingNumpy(harness.host_cupy().cuda)
                patch.setattr(harness, "host_cupy", lambda: host)
                patch.setattr(cpu, "xp", _RecordingNumpy())
                patch.setattr(cpu_module, "to_device", lambda array: _recorded(np.asarray(array)))
                patch.setattr(cpu_module, "copy", _device_copy)  # the CUDA backend's: a memcpy when contiguous
                patch.setattr(cpu, "host_reads_are_free", False)  # as on a GPU: no label range check
                patch.setitem(harness.device_array, "type", _Recorded)  # a kernel refuses host arrays
                draw = cpu_module.uniform  # random draws are made on the device (cuRAND's) on a GPU
                patch.setattr(cpu_module, "uniform", lambda *args, **kwargs: _recorded(draw(*args, **kwargs)))
            patch.setattr(cublas, "_state", {"library": None, "handles": {}})
            cublas.load(library)
            for name, value in {"module": harness.host_cupy if not record_arrays else (lambda: host),
                                "address": harness.host_address if not record_arrays else _device_address,
                                "device_index": lambda a: 0, "current_stream": lambda: 0x5000,
                                "capturing": lambda: False, "_modules": {}, "_functions": {},
                                "_launched": set(), "_ones": {},  # host arrays never meet a GPU run's cache
                                "scatter_add": np.add.at}.items():  # cupyx's, on NumPy
                for side in (cuda_kernels, cuda_gemm):  # the kernels and the GEMM seam
                    if hasattr(side, name):
                        patch.setattr(side, name, value)
            launches: list = []
            real = cuda_kernels.function

            def counting(fname, ctype):
                fn_ = real(fname, ctype)
                name_ = fname.removesuffix(f"_{ctype}")  # one name for the float and double builds
                return lambda grid, block, args: (launches.append(name_), fn_(grid, block, args))

            patch.setattr(cuda_kernels, "function", counting)
            patch.setattr(cpu, "kernels", registry.KernelTable("cuda"))  # resolved now: the patches above hold
            patch.setattr(cpu, "matmul", cuda_gemm.matmul)
            patch.setattr(cpu, "updates_need_scratch", False)  # a GPU's fused updates keep no scratch
            calls = recorder.calls
            result = fn()
            return result, Counter(launches), recorder.calls - calls

    return run


def _train(act: str, loss: str, optimizer: str, capturable: bool, dtype, steps: int = STEPS) -> dict:
    """A 5-16-8 MLP trained ``steps`` steps on 40 rows (``_train_config`` with this grid's settings)."""
    options = {"adam": (0.01, {"weight_decay": 0.01}), "sgd": (0.1, {"momentum": 0.9, "nesterov": True})}
    lr, kwargs = options.get(optimizer, (0.01, {}))  # RMSprop, Adagrad: their kernels, from the second group
    return _train_config({"seed": 0, "model_seed": 1, "batch": 40, "steps": steps, "lr": lr, "dtype": dtype,
                          "sizes": [5, 16, 8, 4 if loss == "cross_entropy" else 1], "act": act, "loss": loss,
                          "reduction": "mean", "smoothing": 0.0, "bias": True, "clip": False, "schedule": False,
                          "capturable": capturable, "optimizer": optimizer, "options": kwargs}, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("capturable", [False, True], ids=["eager-optimizer", "capturable-optimizer"])
@pytest.mark.parametrize(("loss", "optimizer"), [("cross_entropy", "adam"), ("bce", "sgd"),
                                                 ("cross_entropy", "rmsprop"), ("bce", "adagrad")])
@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_an_mlp_trains_through_the_cuda_path_to_the_numpy_weights(cuda_path, act, loss, optimizer, capturable,
                                                                   dtype):
    want = _train(act, loss, optimizer, capturable, dtype)
    got, launches, gemms = cuda_path(lambda: _train(act, loss, optimizer, capturable, dtype))
    assert launches and gemms, "the run did not go through the CUDA backend"
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-6}
    for name in want:
        np.testing.assert_allclose(got[name], want[name], err_msg=name, **tol)


@pytest.mark.parametrize("capturable", [False, True], ids=["eager-optimizer", "capturable-optimizer"])
def test_an_mlp_step_is_a_fixed_small_number_of_launches(cuda_path, capturable):
    """A 3-layer ReLU MLP step with cross-entropy and Adam: per Linear one forward GEMM, a weight
    gradient GEMM and a bias sum (a GEMM with a ones vector: no reduction kernel to compile),
    an input gradient GEMM below the first layer; fused bias+ReLU forward and ReLU gradient per
    hidden layer, the output layer's bias in one more kernel; one loss kernel, its mean over the
    rows as one more GEMM (the 1/n its alpha), the backward's seed (a fill) and one kernel for
    the loss's gradient; the whole Adam update in one launch (and the device step counts in one
    more when capturable). Every one of them is devgrad's: CuPy compiles nothing for this step."""
    # a steady step: what STEPS more steps launch than the first one (which also creates state)
    _, first, first_gemms = cuda_path(lambda: _train("relu", "cross_entropy", "adam", capturable, np.float32, 1))
    _, launches, gemms = cuda_path(lambda: _train("relu", "cross_entropy", "adam", capturable, np.float32,
                                                  STEPS + 1))
    launches.subtract(first)
    gemms -= first_gemms
    per_step = Counter({name: count / STEPS for name, count in launches.items() if count})
    # the backward's seed is a fill on a GPU; the device here is the host, whose implied root
    # gradient is a cached read-only 1 (no launch)
    want = {"devgrad_bias_relu": 2, "devgrad_bias_identity": 1, "devgrad_relu_grad": 2,
            "devgrad_softmax_xent": 1, "devgrad_softmax_xent_grad": 1, "devgrad_adam_many": 1}
    if capturable:
        want["devgrad_increment_steps"] = 1
    assert per_step == Counter(want)
    # forward, weight gradients, input gradients, bias sums, and the loss's mean over the rows
    assert gemms == STEPS * (3 + 3 + 2 + 3 + 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_capturable_step_compiles_one_kernel_module(cuda_path, optimizer, dtype):
    """A capturable optimizer keeps its rate and step counts as float64 scalars on the device;
    writing and advancing them must not make a run compile the module of the other dtype too
    (one more NVRTC compilation on a fresh machine): only the run's own is built."""
    def modules():
        _train("relu", "cross_entropy", optimizer, True, dtype)
        return sorted(cuda_kernels._modules)

    built, launches, _ = cuda_path(modules)
    assert launches["devgrad_increment_steps"] or optimizer == "sgd"
    assert built == [(0, "float" if dtype == np.float32 else "double", "step")]


def test_a_regression_or_dropout_step_compiles_the_second_kernel_group_too(cuda_path):
    """The regression and margin losses and dropout are in the second group ("more"): a step that
    uses one builds both modules of its dtype; classification steps (above) build only the first."""
    def modules(loss):
        rng = np.random.default_rng(0)
        model = dg.nn.MLP([3, 8, 1], activation="relu", generator=1, dropout=0.0 if loss else 0.5)
        opt = dg.optim.Adam(model.parameters(), lr=0.01)
        x = dg.tensor(rng.standard_normal((8, 3)), dtype=np.float32)
        y = dg.tensor(rng.standard_normal((8, 1)), dtype=np.float32)
        out = model(x)
        value = getattr(F, loss)(out, y) if loss else F.binary_cross_entropy_with_logits(out, (y > 0).to(dg.float32))
        opt.zero_grad()
        value.backward()
        opt.step()
        return sorted(cuda_kernels._modules)

    for loss in ("mse_loss", "huber_loss", "hinge_loss", None):
        built, _, _ = cuda_path(lambda loss=loss: modules(loss))
        assert built == [(0, "float", "more"), (0, "float", "step")], loss


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("name", "options"), [
    ("rmsprop", {}), ("rmsprop", {"momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    ("rmsprop", {"maximize": True, "momentum": 0.5}), ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.1, "weight_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("adagrad", {"maximize": True})])
@pytest.mark.parametrize("capturable", [False, True], ids=["eager-optimizer", "capturable-optimizer"])
def test_rmsprop_and_adagrad_update_a_group_in_one_launch(cuda_path, name, options, capturable, dtype):
    """RMSprop and Adagrad (every option) update all of a group's parameters in one launch of a
    fused kernel, as Adam and SGD do, to the NumPy backend's weights; their state starts with
    devgrad's fill (a memset for zeros): no CuPy kernel in their steps."""
    def train():
        rng = np.random.default_rng(0)
        model = dg.nn.MLP([5, 16, 4], activation="relu", generator=1, dtype=dtype)
        opt = dg.optim.OPTIMIZERS[name](model.parameters(), lr=0.01, capturable=capturable, **options)
        xb, yb = dg.tensor(rng.standard_normal((20, 5)), dtype=dtype), dg.tensor(rng.integers(0, 4, 20))
        recorded = []
        for step in range(STEPS):
            _Recorded.ops = recorded if step else None  # the first step creates the state
            try:
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            finally:
                _Recorded.ops = None
        return {k: v.numpy() for k, v in model.state_dict().items()}, recorded

    want, _ = train()
    (got, recorded), launches, _ = cuda_path(train, record_arrays=True)
    assert launches[f"devgrad_{name}_many"] == STEPS
    assert [op for op in recorded if op not in {"empty", "empty_like", "zeros", "asarray", "reshape",
                                                 "ascontiguousarray"}] == []
    # The kernel computes in double and rounds once, NumPy's float32 chain after every op; RMSprop
    # divides a gradient by its own running RMS, so where a gradient is tiny (near eps) that
    # rounding moves a step of up to ~10·lr by parts in 1e3: float32 within 5e-5 of lr = 0.01.
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-4, "atol": 5e-5}
    for key in want:
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **tol)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [
    {"data": {"source": "spirals", "n_samples": 300}, "model": {"hidden": [16, 16], "activation": "tanh"},
     "optimizer": {"name": "adam", "lr": 0.02}, "train": {"epochs": 3, "batch_size": 32, "clip_grad_norm": 1.0}},
    {"data": {"source": "sklearn:diabetes"}, "model": {"hidden": [8], "activation": "relu"}, "loss": "huber",
     "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}, "train": {"epochs": 3, "batch_size": 64}},
], ids=["classification", "regression"])
def test_a_run_through_the_cuda_path_gives_the_cpu_metrics(cuda_path, tmp_path, spec):
    """The runner's step (the model, the loss, clipping, the optimizer, the metric sums kept on
    the device) through the CUDA path, against the same spec on the NumPy backend."""
    if spec["data"]["source"].startswith("sklearn:"):
        pytest.importorskip("sklearn")
    spec = {"name": "cuda_path", "seed": 0, "device": "cpu", "plots": {"enabled": False}, **spec}
    want = run(spec, out=tmp_path / "numpy", quiet=True).summary["final"]
    result, launches, gemms = cuda_path(lambda: run(spec, out=tmp_path / "cuda", quiet=True))
    assert launches and gemms
    if "regression" in result.summary["task"]:
        # every training, validation and test batch: its errors in one launch, then two dot
        # products (442 samples split 309/66/67: 5 training batches of 64, one of each other split)
        assert launches["devgrad_reg_errors"] == result.summary["epochs_run"] * (5 + 1) + 1
    else:
        # every training, validation and test batch: its loss and hits added on the device in one
        # launch (300 samples split 210/45/45: 7 training batches of 32, one of each other split)
        assert launches["devgrad_class_sums"] == result.summary["epochs_run"] * (7 + 1) + 1
        # each epoch's shuffle: the features and the labels gathered on the device, one launch each
        assert launches["devgrad_gather_rows"] == 2 * result.summary["epochs_run"]
    got = result.summary["final"]
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key


def test_a_classification_steps_array_work_is_all_devgrads_kernels_and_cublas(cuda_path):
    """Every array operation of a steady training step of a ReLU MLP (forward, cross-entropy and
    its mean, backward, capturable Adam, the runner's loss and hit sums) is one of devgrad's kernels,
    a GEMM, or an allocation: no NumPy ufunc or function runs, so on a GPU CuPy launches (and on a
    fresh machine compiles) none of its own kernels for it."""

    def steps():
        rng = np.random.default_rng(0)
        model = dg.nn.MLP([5, 16, 8, 4], activation="relu", generator=1)
        opt = dg.optim.Adam(model.parameters(), lr=0.01, capturable=True)
        xb = dg.tensor(rng.standard_normal((40, 5)), dtype=np.float32)
        yb = dg.tensor(rng.integers(0, 4, 40))
        cpu = dg.device("cpu")
        loss_sum, hits = cpu.xp.zeros((), dtype=np.float64), cpu.xp.zeros((), dtype=np.int64)
        recorded = []
        for step in range(3):
            _Recorded.ops = recorded if step == 2 else None  # the first steps create state
            try:
                out = model(xb)
                loss = F.cross_entropy(out, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                cpu.kernels.class_sums(out.data, yb.data, loss.data, 40, 0.0, loss_sum, hits)
            finally:
                _Recorded.ops = None
        assert isinstance(out.data, _Recorded) and isinstance(model.net[0].weight.data, _Recorded)
        return recorded

    recorded, launches, gemms = cuda_path(steps, record_arrays=True)
    assert launches and gemms
    allowed = {"empty", "empty_like", "zeros", "asarray", "reshape", "ascontiguousarray"}  # no kernel
    assert [op for op in recorded if op not in allowed] == []


@pytest.mark.slow
@pytest.mark.parametrize(("source", "loss", "optimizer"), [
    ("spirals", "cross_entropy", "adam"), ("xor", "bce", "sgd"), ("xor", {"name": "bce", "pos_weight": 2.0}, "adam"),
    ("xor", "logistic", "adam"), ("xor", "hinge", "sgd"),
    ("sklearn:diabetes", "mse", "adam"), ("sklearn:diabetes", "mae", "sgd"), ("sklearn:diabetes", "huber", "adam")])
def test_the_runners_step_runs_no_array_op_of_its_own(cuda_path, tmp_path, source, loss, optimizer):
    """The runner's step itself (its targets, the fused loss and its mean, backward, the
    capturable optimizer, the epoch sums), for a multi-class task, a binary one with each of its
    losses and a regression one with each of its losses: every array operation is a devgrad
    kernel, a GEMM or an allocation."""
    data = {"source": source} if source.startswith("sklearn:") else {"source": source, "n_samples": 200}
    if source.startswith("sklearn:"):
        pytest.importorskip("sklearn")

    def steps():
        spec = resolve({"name": "rec", "seed": 0, "device": "cpu", "data": data,
                        "model": {"hidden": [16, 16], "activation": "relu"}, "loss": loss,
                        "optimizer": {"name": optimizer, "lr": 0.05},
                        "train": {"epochs": 1, "batch_size": 32, "cuda_graph": True}})
        trainer = Trainer(make_plan(spec, "cpu"), tmp_path, run_logger(tmp_path))
        batches = list(trainer.train_loader)
        recorded = []
        try:
            for i, (xb, yb) in enumerate(batches[:3]):
                _Recorded.ops = recorded if i == 2 else None
                try:
                    trainer._step(xb, yb)
                finally:
                    _Recorded.ops = None
        finally:
            close_logger(trainer.log)  # its train.log
        assert isinstance(batches[0][0].data, _Recorded)
        return recorded

    recorded, launches, _ = cuda_path(steps, record_arrays=True)
    assert launches["devgrad_reg_errors" if source == "sklearn:diabetes" else "devgrad_class_sums"] == 3
    fused = {"cross_entropy": "softmax_xent", "bce": "bce_logits", "mse": "sq_err", "mae": "abs_err",
             "huber": "huber_err"}.get(loss if isinstance(loss, str) else loss["name"], loss)
    assert launches[f"devgrad_{fused}"] == launches[f"devgrad_{fused}_grad"] == 3  # the loss: one node
    allowed = {"empty", "empty_like", "zeros", "asarray", "reshape", "ascontiguousarray"}  # no kernel
    assert [op for op in recorded if op not in allowed] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpu_large", "spirals", "digits"])
def test_a_whole_run_launches_no_kernel_of_cupys(cuda_path, tmp_path, name, monkeypatch):
    """Not just the step: a whole run — the model's construction and initial weights, the data
    put on the device, each epoch's shuffle, the steps, validation, the test split, the schedule,
    the per-epoch snapshots and checkpoints, the hidden-unit log, restoring the best epoch, and
    for spirals the plots' probabilities over a grid and the decision-boundary frames, for digits
    the dropout masks and products (the draws themselves are cuRAND's on a GPU) — runs
    devgrad's kernels, GEMMs, allocations, memsets and memcpys only: on a machine that never ran
    devgrad, CuPy compiles nothing of its own for it (each CuPy kernel would be an NVRTC
    compilation of 0.1-0.4 s there)."""
    spec = yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text(encoding="utf-8"))
    spec["device"] = "cpu"
    if name == "gpu_large":  # shrunk, without plots (it has no 2-D picture to draw)
        spec["plots"] = {"enabled": False}
        spec["data"].update(n_samples=600, n_features=16)
        spec["model"]["hidden"] = [32, 32]
        spec["train"].update(epochs=3, batch_size=64)
    else:
        pytest.importorskip("matplotlib")
        if name == "digits":
            pytest.importorskip("sklearn")
        spec["train"]["epochs"] = 2

    def on_the_host(fn):
        # fn runs on the real CPU in any run (it makes its own device="cpu" tensors from host
        # copies), which this stand-in routes through the CUDA path: not recorded
        def unrecorded(*args):
            ops, _Recorded.ops = _Recorded.ops, None
            try:
                return fn(*args)
            finally:
                _Recorded.ops = ops
        return unrecorded

    # the memory check's one optimizer step; the neuron pictures' activations of host values
    monkeypatch.setattr(memory, "optimizer_state_per_value", on_the_host(memory.optimizer_state_per_value))
    monkeypatch.setattr(neurons, "activation", on_the_host(neurons.activation))

    def whole_run():
        recorded = []
        _Recorded.ops = recorded
        try:
            result = run(spec, out=tmp_path, quiet=True)
        finally:
            _Recorded.ops = None
        return recorded, result

    (recorded, result), launches, gemms = cuda_path(whole_run, record_arrays=True)
    assert result.summary["status"] == "completed" and launches["devgrad_adam_many"] and gemms
    assert "memcpy" in recorded  # the snapshots: device copies, seen by this recording
    allowed = {"empty", "empty_like", "zeros", "zeros_like", "asarray", "reshape", "ascontiguousarray", "shape",
               "memset", "memcpy"}
    assert sorted({op for op in recorded if op not in allowed}) == []


@pytest.mark.slow
def test_bench_reports_the_launches_of_one_eager_step(cuda_path):
    """On a GPU, devgrad bench says how many of devgrad's kernels and cuBLAS GEMMs one eager step
    launches (counted by the CUDA backend itself) and the host time it takes to issue one, and
    prints both under its table."""
    result, _, _ = cuda_path(lambda: bench.bench_config(bench.CONFIGS["small"], dg.device("cpu"),
                                                                   repeat=1, min_block_s=0.001))
    counted = result["launches_per_step"]
    # small is 64-128-128-10 ReLU with cross-entropy and Adam, as the 3-layer budget test above; on
    # a GPU the backward's seed is one more (a fill), the host device here uses its cached read-only 1
    assert counted == {"kernels": 8, "gemms": 12}
    table = bench.format_table({"configs": [result], "device_description": "test", "numpy": np.__version__,
                                "torch": None, "matmul_peak_gflops": 1.0})
    assert "launches per eager devgrad step (devgrad's kernels, cuBLAS): small 8 kernels + 12 GEMMs" in table
    # and how much of a step's time the host spends issuing it (here the "GPU" is the host too)
    assert 0 < result["host_ms_per_step"]
    assert "host time to issue one eager devgrad step, of the step's time" in table
    assert f"small {result['host_ms_per_step']:.3f} of {result['devgrad']['median_ms']:.3f} ms" in table


# -- random configurations: whatever a user combines, the CUDA path computes what NumPy does ------
# The tests above walk fixed grids; these draw the combinations (hypothesis, derandomized so CI
# sees the same ones every run): random MLPs with any activation, loss, reduction, optimizer and
# its options, clipping and a schedule, odd sizes and batches of one; and random chains of ops
# (views, transposes, slices, broadcasts, reductions, matmuls in both layouts) differentiated.

_RANDOM = settings(max_examples=40, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_OPTIONS = {
    "sgd": lambda draw: {"momentum": draw(st.sampled_from([0.0, 0.9])), "dampening": draw(st.sampled_from([0.0, 0.1])),
                         "weight_decay": draw(st.sampled_from([0.0, 0.01])), "maximize": draw(st.booleans())},
    "nesterov": lambda draw: {"momentum": 0.9, "nesterov": True, "weight_decay": draw(st.sampled_from([0.0, 0.01]))},
    "adam": lambda draw: {"amsgrad": draw(st.booleans()), "weight_decay": draw(st.sampled_from([0.0, 0.01])),
                          "maximize": draw(st.booleans())},
    "adamw": lambda draw: {"amsgrad": draw(st.booleans()), "weight_decay": draw(st.sampled_from([0.0, 0.05]))},
    "rmsprop": lambda draw: {"momentum": draw(st.sampled_from([0.0, 0.5])), "centered": draw(st.booleans()),
                             "weight_decay": draw(st.sampled_from([0.0, 0.01]))},
    "adagrad": lambda draw: {"lr_decay": draw(st.sampled_from([0.0, 0.01])),
                             "initial_accumulator_value": draw(st.sampled_from([0.0, 0.1]))},
}


@st.composite
def _mlp_configs(draw):
    optimizer = draw(st.sampled_from(sorted(_OPTIONS)))
    return {"seed": draw(st.integers(0, 1000)), "dtype": draw(st.sampled_from([np.float32, np.float64])),
            "batch": draw(st.integers(1, 40)), "sizes": draw(st.lists(st.integers(1, 12), min_size=2, max_size=4)),
            "act": draw(st.sampled_from(["relu", "tanh", "sigmoid", "leaky_relu", "softplus", "identity"])),
            "loss": draw(st.sampled_from(["cross_entropy", "bce", "mse", "huber"])),
            "reduction": draw(st.sampled_from(["mean", "sum", "none"])), "smoothing": draw(st.sampled_from([0.0, 0.1])),
            "bias": draw(st.booleans()), "clip": draw(st.booleans()), "schedule": draw(st.booleans()),
            "capturable": draw(st.booleans()), "optimizer": optimizer, "options": _OPTIONS[optimizer](draw)}


def _train_config(cfg: dict, dtype) -> dict:
    rng = np.random.default_rng(cfg["seed"])
    n, sizes, loss = cfg["batch"], cfg["sizes"], cfg["loss"]
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], n)
    else:
        y = ((rng.random((n, sizes[-1])) > 0.5) if loss == "bce" else rng.standard_normal((n, sizes[-1]))).astype(dtype)
    model = dg.nn.MLP(sizes, activation=cfg["act"], generator=cfg.get("model_seed", cfg["seed"]), dtype=dtype,
                      bias=cfg["bias"])
    name = cfg["optimizer"]
    opt = dg.optim.OPTIMIZERS["sgd" if name == "nesterov" else name](model.parameters(), lr=cfg.get("lr", 0.05),
                                                                     capturable=cfg["capturable"], **cfg["options"])
    schedule = dg.optim.CosineAnnealingLR(opt, t_max=4) if cfg["schedule"] else None
    xb, yb = dg.tensor(X, dtype=dtype), dg.tensor(y)
    for _ in range(cfg.get("steps", 3)):
        out = model(xb)
        if loss == "cross_entropy":
            value = F.cross_entropy(out, yb, label_smoothing=cfg["smoothing"], reduction=cfg["reduction"])
        else:
            value = {"bce": F.binary_cross_entropy_with_logits, "mse": F.mse_loss, "huber": F.huber_loss}[loss](
                out, yb, reduction=cfg["reduction"])
        value = value.mean() if cfg["reduction"] == "none" else value
        opt.zero_grad()
        value.backward()
        if cfg["clip"]:
            dg.optim.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        if schedule is not None:
            schedule.step()
    return {k: v.numpy() for k, v in model.state_dict().items()}


@_RANDOM
@given(cfg=_mlp_configs())
def test_random_mlp_configurations_train_through_the_cuda_path_to_the_numpy_weights(cuda_path, cfg):
    """float64: the NumPy backend's weights to rounding. float32: the kernels compute in double and
    round once, NumPy rounds after every operation, and an optimizer's first steps (Adam's, RMSprop's
    g/√v) magnify that where a gradient is tiny; so both float32 runs are measured against the
    float64 run, and the CUDA path must be about as close to it as NumPy's float32 is."""
    dtype = cfg["dtype"]
    want = _train_config(cfg, dtype)
    got, launches, gemms = cuda_path(lambda: _train_config(cfg, dtype), record_arrays=True)
    assert gemms and sum(launches.values()), "the run did not go through the CUDA backend"
    truth = want if dtype == np.float64 else _train_config(cfg, np.float64)
    for name, value in want.items():
        assert got[name].dtype == value.dtype == dtype and got[name].shape == value.shape, name
        if dtype == np.float64:
            np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-11, err_msg=name)
        else:
            numpy_error = np.abs(value - truth[name]).max()
            ours = np.abs(got[name] - truth[name]).max()
            assert ours <= max(10 * numpy_error, 1e-4 * max(1.0, np.abs(truth[name]).max())), (name, ours, numpy_error)


def _random_op_chain(draw, rng):
    """A random differentiable chain from a (m, k) leaf; returns (leaves as arrays, fn(*tensors))."""
    shape = [draw(st.integers(1, 5)), draw(st.integers(1, 5))]
    leaves = [rng.standard_normal(shape)]
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["unary", "matmul", "matmul_t", "bias", "column", "binary", "softmax",
                                     "transpose", "slice", "reduce"]))
        if kind in ("matmul", "matmul_t", "bias", "column", "binary"):
            r = draw(st.integers(1, 5))
            leaf_shape = {"matmul": (shape[1], r), "matmul_t": (r, shape[1]), "bias": (shape[1],),
                          "column": (shape[0], 1), "binary": tuple(shape)}[kind]
            leaves.append(rng.standard_normal(leaf_shape))
            if kind.startswith("matmul"):
                shape = [shape[0], r]
            steps.append((kind, len(leaves) - 1))
        elif kind == "unary":
            steps.append((draw(st.sampled_from(["relu", "tanh", "sigmoid", "softplus", "leaky_relu", "exp", "abs",
                                                "square"])), None))
        elif kind == "transpose":
            shape = shape[::-1]
            steps.append((kind, None))
        elif kind == "slice":
            axis = draw(st.integers(0, 1))
            shape[axis] = (shape[axis] + 1) // 2
            steps.append((f"slice{axis}", None))
        elif kind == "reduce":
            axis = draw(st.integers(0, 1))
            shape[axis] = 1
            steps.append((draw(st.sampled_from(["sum", "mean", "max"])) + str(axis), None))
        else:
            steps.append((draw(st.sampled_from(["softmax", "log_softmax"])), None))
    leaves.append(rng.standard_normal(shape))  # the cotangent

    def fn(*tensors):
        h = tensors[0]
        for kind, leaf in steps:
            other = tensors[leaf] if leaf is not None else None
            if kind == "matmul":
                h = h @ other
            elif kind == "matmul_t":
                h = h @ other.T  # a transposed view: the other cuBLAS layout
            elif kind in ("bias", "column", "binary"):
                h = h + other if kind != "binary" else h * other
            elif kind in ("relu", "tanh", "sigmoid", "softplus", "leaky_relu", "abs"):
                h = getattr(h, kind)()
            elif kind == "exp":
                h = (h * 0.3).exp()
            elif kind == "square":
                h = h * h
            elif kind == "transpose":
                h = h.T
            elif kind == "slice0":
                h = h[::2]
            elif kind == "slice1":
                h = h[:, ::2]
            elif kind[:-1] in ("sum", "mean", "max"):
                h = getattr(h, kind[:-1])(axis=int(kind[-1]), keepdims=True)
            else:
                h = getattr(h, kind)(axis=-1)
        return h
    return leaves, fn


def _chain_results(leaves, fn) -> list:
    tensors = [dg.tensor(a, requires_grad=True) for a in leaves[:-1]]
    out = fn(*tensors)
    (out * dg.tensor(leaves[-1])).sum().backward()
    return [out.numpy()] + [t.grad.numpy() for t in tensors]


@_RANDOM
@given(data=st.data())
def test_random_op_chains_through_the_cuda_path_equal_the_numpy_backend(cuda_path, data):
    """A random chain of ops (views, slices, transposes, broadcasts, reductions, matmuls in both
    layouts, activations, softmax) and its gradients, through the CUDA backend's kernels and GEMM
    seam: the NumPy backend's values, to float64 rounding."""
    leaves, fn = _random_op_chain(data.draw, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    want = _chain_results(leaves, fn)
    got, _, _ = cuda_path(lambda: _chain_results(leaves, fn), record_arrays=True)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("activation", "loss", "optimizer"), [
    ("relu", "cross_entropy", "adam"), ("tanh", "bce", "sgd"), ("sigmoid", "nll", "rmsprop"),
    ("leaky_relu", "hinge", "adagrad"), ("softplus", "logistic", "adamw"), ("identity", "cross_entropy", "sgd")])
def test_a_step_through_the_cuda_path_is_captured_without_reading_back_and_replays_the_eager_weights(
        cuda_path, activation, loss, optimizer):
    """The capture audit of tests/core/test_capture.py, through the CUDA backend's own Python (its
    kernels, GEMM seam, multi-tensor updates, sums as GEMMs): while the step is "captured" the
    backend says it is capturing (so its capture-only branches run), a device array read back to
    the host (float(), bool(), .item(), a copy to the host) fails the test, and the capture
    executes nothing (every array it changed is put back); replays then give the eager weights.
    The device is that audit's own stand-in GPU, given the CUDA path's kernels and GEMM seam."""
    from devgrad.capture import CapturedStep
    from tests.core.test_capture import _LOSSES, _OPTIMIZERS, X, Y, _NoHostReadsDevice

    class CudaPathCapture(_NoHostReadsDevice):
        def __init__(self, state):
            super().__init__(state)
            cpu = dg.device("cpu")  # the CUDA path's kernels, GEMM seam and device arrays (cuda_path)
            self.xp, self.kernels, self.matmul = cpu.xp, cpu.kernels, cpu.matmul
            self.updates_need_scratch = cpu.updates_need_scratch

        def capture(self, fn):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(cuda_gemm, "capturing", lambda: True)  # the backend's capture-only branches
                patch.setattr(_Recorded, "capturing", True)  # float(), bool(), .item() of a device array refused
                return super().capture(fn)

    def train(graphed: bool):
        holder: dict = {}

        def state():  # what a step changes
            model, opt, total = holder["model"], holder["opt"], holder["total"]
            return ([p.data for p in model.parameters()] + [total.data]
                    + [v for entry in opt.state.values() for v in entry.values() if isinstance(v, np.ndarray)])

        dev = CudaPathCapture(state) if graphed else dg.device("cpu")
        model = dg.nn.MLP([5, 8, 3], activation=activation, device=dev, generator=np.random.default_rng(0))
        opt = _OPTIMIZERS[optimizer](model.parameters())
        total = dg.zeros((), dtype="float64", device=dev)
        holder.update(model=model, opt=opt, total=total)

        def step(xb, yb):
            value = _LOSSES[loss](model(xb), yb)
            opt.zero_grad()
            value.backward()
            dg.optim.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            total.data += value.data  # the metric sum, on the device

        captured = CapturedStep(step, dev, optimizer=opt if graphed else None, enabled=graphed)
        for start in (0, 16, 32):
            captured(dg.tensor(X[start:start + 16], device=dev), dg.tensor(Y[start:start + 16], device=dev))
        return [p.numpy() for p in model.parameters()], float(total.data), captured

    (eager, eager_total, _), _, _ = cuda_path(lambda: train(False), record_arrays=True)
    (graph, graph_total, captured), launches, gemms = cuda_path(lambda: train(True), record_arrays=True)
    assert captured.failure is None and captured.graphs == 1 and captured.replays == 2
    assert launches and gemms
    assert graph_total == pytest.approx(eager_total, rel=1e-6)
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_float16_runs_through_the_cuda_path_as_on_the_cpu(cuda_path):
    """The kernel module is built for float32 and float64. float16 tensors (which devgrad takes
    on any device) run each fused kernel on float64 copies, rounded back once into float16: the
    activations, both cross-entropies and a pair loss give the NumPy backend's loss and gradients
    (to float16's precision: NumPy rounds after every op), and one step of SGD with momentum and
    of Adam (each tensor through a float64 working copy, updated by the multi-tensor kernel over
    a table of one) is the update computed in float64 and rounded once."""
    def step():
        rng = np.random.default_rng(3)
        x = dg.tensor(rng.standard_normal((16, 3)), dtype="float16")
        labels = dg.tensor(rng.integers(0, 4, 16))
        flags = dg.tensor(rng.integers(0, 2, (16, 1)), dtype="float16")
        results = []
        for act in ("relu", "tanh", "sigmoid"):
            model = dg.nn.MLP([3, 8, 4], activation=act, generator=1, dtype="float16")
            params = list(model.parameters())
            for opt in (dg.optim.SGD(params, lr=0.01, momentum=0.9), dg.optim.Adam(params, lr=1e-3, eps=1e-3)):
                out = model(x)
                loss = (F.cross_entropy(out, labels) + F.binary_cross_entropy_with_logits(out[:, :1], flags)
                        + F.huber_loss(out[:, 1:2], flags) + out.sigmoid().mean())
                opt.zero_grad()
                loss.backward()
                before = [p.numpy().copy() for p in params]
                opt.step()
                results.append((loss.numpy(), [p.grad.numpy() for p in params], before, [p.numpy() for p in params]))
        return results

    want = step()
    got, launches, _ = cuda_path(step)
    # one launch per tensor: 4 parameters, 3 models
    assert launches["devgrad_adam_many"] == launches["devgrad_sgd_many"] == 12 and launches["devgrad_softmax_xent"]
    for i, ((loss, grads, before, after), (want_loss, want_grads, _, _)) in enumerate(zip(got, want)):
        for g, w in zip([loss, *grads], [want_loss, *want_grads]):
            assert g.dtype == np.float16
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=2e-2, atol=2e-3)
        for p, g, new in zip(before, grads, after):  # first steps: SGD p − lr·g; Adam p − lr·g/(|g| + eps)
            p, g = p.astype(np.float64), g.astype(np.float64)
            update = p - 0.01 * g if i % 2 == 0 else p - 1e-3 * g / (np.abs(g) + 1e-3)
            assert new.dtype == np.float16
            np.testing.assert_array_equal(new, update.astype(np.float16))


def _op_and_gradients(case, dtype):
    """An op's output and the gradients of its float inputs for a fixed cotangent (first order,
    then second order through create_graph), as host arrays."""
    _, fn, _, arrays = case
    xs = [dg.tensor(np.asarray(a).astype(dtype if np.asarray(a).dtype.kind == "f" else np.asarray(a).dtype),
                    requires_grad=np.asarray(a).dtype.kind == "f") for a in arrays]
    out = fn(*xs)
    wanted = [x for x in xs if x.requires_grad]
    results = [out.numpy()]
    if wanted and out.dtype.kind == "f":
        cot = dg.tensor(np.random.default_rng(0).standard_normal(out.shape).astype(dtype))
        results += [None if g is None else g.numpy()
                    for g in dg.grad(out, wanted, cot, allow_unused=True, retain_graph=True)]
        graph = dg.grad(out, wanted, cot, allow_unused=True, create_graph=True)
        results += [None if g is None else g.numpy() for g in graph]
    return results


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16], ids=["f64", "f32", "f16"])
def test_every_op_through_the_cuda_path_equals_the_numpy_backend(cuda_path, dtype):
    """Every op of the op table (tests/ops/test_ops.py: arithmetic, broadcasting, reductions,
    matmul in every layout, indexing, activations), forward and backward, through the CUDA
    backend's kernels and GEMM seam (on their host builds): the NumPy backend's values, to
    rounding. This is most of what the suite checks with DEVGRAD_TEST_DEVICES=cuda on a GPU."""
    from tests.ops.test_ops import CASES

    tol = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 2e-5, "atol": 2e-6},
           np.float16: {"rtol": 2e-2, "atol": 2e-2}}[dtype]  # float16: NumPy rounds after every op
    want = {case[0]: _op_and_gradients(case, dtype) for case in CASES}
    got, launches, gemms = cuda_path(lambda: {case[0]: _op_and_gradients(case, dtype) for case in CASES})
    assert gemms or dtype == np.float16  # the matmul cases went through cuBLAS's stand-in (float16: CuPy's matmul)
    assert {"devgrad_relu_grad", "devgrad_sigmoid", "devgrad_bias_relu"} <= set(launches), launches
    for name, values in want.items():
        assert len(got[name]) == len(values), name
        for g, w in zip(got[name], values):
            assert (g is None) == (w is None), name
            if w is not None:
                assert g.dtype == w.dtype and g.shape == w.shape, name
                np.testing.assert_allclose(g, w, **tol, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_every_loss_through_the_cuda_path_equals_the_numpy_backend(cuda_path, dtype):
    """Every loss of tests/nn/test_functional.py (each reduction), its value and its gradient
    first order and through create_graph, through the CUDA backend's fused loss kernels: the
    NumPy backend's values, to rounding."""
    from tests.nn.test_functional import LOGITS, LOSS_CASES

    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-6}

    def losses():
        results = {}
        for name, make in LOSS_CASES.items():
            for reduction in ("mean", "sum", "none"):
                z = dg.tensor(LOGITS + 0.05, dtype=dtype, requires_grad=True)
                out = make(z, "cpu", reduction)
                cot = dg.tensor(np.linspace(-1, 1, out.size).reshape(out.shape).astype(dtype))
                first = dg.grad(out, [z], cot, retain_graph=True)[0]
                second = dg.grad(out, [z], cot, create_graph=True)[0]
                results[name, reduction] = [out.numpy(), first.numpy(), second.numpy()]
        return results

    want = losses()
    got, launches, _ = cuda_path(losses)
    assert {"devgrad_softmax_xent", "devgrad_bce_logits_grad", "devgrad_huber_err", "devgrad_hinge_grad"} <= set(
        launches), launches
    for key, values in want.items():
        for g, w in zip(got[key], values):
            assert g.dtype == w.dtype and g.shape == w.shape, key
            np.testing.assert_allclose(g, w, **tol, err_msg=str(key))


@pytest.mark.parametrize("act", ["leaky_relu", "softplus", "identity"])
def test_the_other_activations_dropout_clipping_and_adamw_through_the_cuda_path(cuda_path, act):
    """An MLP with an activation that has no fused kernel, dropout, gradient clipping, AdamW and
    a cosine schedule trains through the CUDA path to the NumPy backend's weights."""
    def train():
        dg.manual_seed(7)  # the dropout masks' stream
        rng = np.random.default_rng(5)
        x, y = dg.tensor(rng.standard_normal((32, 4))), dg.tensor(rng.integers(0, 3, 32))
        model = dg.nn.MLP([4, 16, 16, 3], activation=act, dropout=0.2, generator=2)
        opt = dg.optim.AdamW(model.parameters(), lr=0.02, weight_decay=0.1)
        schedule = dg.optim.CosineAnnealingLR(opt, T_max=5)
        for _ in range(5):
            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            dg.optim.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            schedule.step()
        return {k: v.numpy() for k, v in model.state_dict().items()}

    want = train()
    got, launches, gemms = cuda_path(train)
    assert launches["devgrad_adam_many"] == 5 and gemms
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=2e-5, atol=2e-6, err_msg=name)  # float32


def test_dropout_on_a_gpu_is_curands_draws_then_one_kernel_forward_and_one_backward(cuda_path, monkeypatch):
    """On a GPU, dropout takes cuRAND's draws as they come, in (0, 1], and launches one kernel
    forward (mask and product) and one backward (the product with the mask): no kernel moves the
    draws into [0, 1) first, and the mask kernel drops a draw of exactly 1 as it would drop the 0
    that moving it would have made."""
    import contextlib
    import types

    from devgrad.backend import cupy as cuda_module

    stand_in = harness.host_cupy()
    stand_in.cuda = types.SimpleNamespace(Device=lambda index: contextlib.nullcontext())
    monkeypatch.setattr(cuda_module, "module", lambda: stand_in)
    monkeypatch.setattr(cpu_module, "uniform", cuda_module.open_device(0).uniform)  # the CPU draws as a GPU does
    draws = np.array([[1.0, 0.25, 0.75, 1.0, 0.5]])

    class CuRand:  # CuPy's generator: its raw cuRAND call
        def _random_sample_raw(self, shape, dtype):
            return draws.astype(dtype).reshape(shape)

    def forward_backward():
        x = dg.tensor(np.full((1, 5), 3.0, dtype=np.float32), requires_grad=True)
        y = F.dropout(x, 0.5, generator=CuRand())
        y.backward(dg.ones((1, 5)))
        return y.numpy(), x.grad.numpy()

    (y, gx), launches, _ = cuda_path(forward_backward)
    np.testing.assert_array_equal(y, [[0, 0, 6, 0, 6]])
    np.testing.assert_array_equal(gx, [[0, 0, 2, 0, 2]])
    # and the fill of the ones given to backward: nothing else
    assert launches == Counter({"devgrad_dropout": 1, "devgrad_mul": 1, "devgrad_fill": 1}), launches


EXPERIMENTS = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "experiments").glob("*.yaml")
                     if p.name != "gpu_large.yaml")  # gpu_large: minutes on a CPU


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_shipped_experiment_trains_through_the_cuda_path_to_the_cpu_metrics(cuda_path, tmp_path, name):
    """Each spec in experiments/ (3 epochs, no plots) through the CUDA backend's kernels and GEMM
    seam ends with the NumPy backend's metrics: every loss, task and model the lecture uses."""
    spec = Path(__file__).resolve().parents[2] / "experiments" / name
    if "sklearn:" in spec.read_text():
        pytest.importorskip("sklearn")
    overrides = ["device=cpu", "plots.enabled=false", "train.epochs=3"]
    want = run(str(spec), overrides=overrides, out=tmp_path / "numpy", quiet=True).summary["final"]
    result, launches, _ = cuda_path(lambda: run(str(spec), overrides=overrides, out=tmp_path / "cuda", quiet=True))
    assert launches, "the run did not go through the CUDA backend"
    got = result.summary["final"]
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key


def test_the_host_runs_leave_the_gpu_caches_alone(cuda_path):
    """The CUDA path's host arrays (its cached ones vectors, its loaded host kernels) live only
    while it runs: a GPU run in the same process (DEVGRAD_TEST_DEVICES=cuda with xdist) must
    never be handed a NumPy array as a device pointer."""
    caches = {(side, name): dict(getattr(side, name))
              for side, name in ((cuda_gemm, "_ones"), (cuda_kernels, "_modules"), (cuda_kernels, "_functions"))}
    _, launches, gemms = cuda_path(lambda: _train("relu", "cross_entropy", "adam", False, np.float32))
    assert launches and gemms
    for (side, name), before in caches.items():
        assert getattr(side, name) == before, name


def _numpy_function_gradients() -> list:
    """Gradients through NumPy's functions whose backward uses the device's kernels: scatter-add
    (take, repeat, edge padding, take_along_axis) and broadcast sums (the binary ufuncs)."""
    rng = np.random.default_rng(5)
    x = dg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = dg.tensor(rng.standard_normal(4), requires_grad=True)
    parts = [dg.take(x, [0, 0, 5]), dg.repeat(x, [2, 0, 1], axis=0) * 0.5, dg.pad(x, 2, "edge") ** 2,
             dg.take_along_axis(x, [[0], [3], [3]], 1), dg.arctan2(x, b), dg.fmax(x, b), dg.logaddexp(x, b),
             dg.hypot(x, b) % 0.7, dg.roll(dg.sinc(x), 3)]
    total = parts[0].sum()
    for part in parts[1:]:
        total = total + part.sum()
    return [g.numpy() for g in dg.grad(total, [x, b])]


def test_numpy_functions_differentiate_through_the_cuda_path_as_on_the_cpu(cuda_path):
    want = _numpy_function_gradients()
    got, _, _ = cuda_path(_numpy_function_gradients)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


def _reduction_product_linalg_gradients() -> list:
    """Gradients through the reductions, products and dg.linalg: scatter-add (sorting, diagonals),
    the GEMM seam (einsum, tensordot, the decompositions' backward) and broadcast sums."""
    rng = np.random.default_rng(6)
    x = dg.tensor(rng.standard_normal((3, 3)) + 3 * np.eye(3), requires_grad=True)
    v = dg.tensor([1.0, 0.0, 2.0, -1.0], requires_grad=True)
    s = (x + x.T) * 0.5
    parts = [dg.sort(x, axis=0) ** 2, dg.topk(x, 2).values, dg.median(x, axis=1), dg.prod(v), dg.cumprod(v),
             dg.einsum("ij,jk->ki", x, x), dg.tensordot(x, x, axes=1), dg.kron(x, v) * 0.1, dg.trace(x),
             dg.tril(x, -1) ** 2, dg.diag(v), dg.linalg.inv(x), dg.linalg.det(x), dg.linalg.solve(x, v[:3]),
             dg.linalg.eigh(s).eigenvectors ** 2, dg.linalg.svd(x).S, dg.linalg.qr(x).R, dg.linalg.norm(x, "nuc")]
    total = parts[0].sum()
    for part in parts[1:]:
        total = total + part.sum()
    return [g.numpy() for g in dg.grad(total, [x, v])]


def test_reductions_products_and_linalg_differentiate_through_the_cuda_path_as_on_the_cpu(cuda_path):
    want = _reduction_product_linalg_gradients()
    got, _, _ = cuda_path(_reduction_product_linalg_gradients)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13)
