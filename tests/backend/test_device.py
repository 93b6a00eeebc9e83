"""Devices: resolution, defaults, the CUDA-unavailable story, and the no-hidden-transfer rule."""

from __future__ import annotations

import inspect
import pickle
import sys

import numpy as np
import pytest

import devgrad as dg
from devgrad.backend import cupy_import
from devgrad.backend import numpy as cpu_module
from tests.support.helpers import block_import

needs_no_cuda = pytest.mark.skipif(dg.cuda_available(), reason="checks the CUDA-unavailable path")


def test_cpu_device_is_interned_and_named():
    assert dg.device("cpu") is dg.device("CPU") is dg.device(dg.device("cpu"))
    assert str(dg.device("cpu")) == "cpu" and dg.device("cpu").xp is np
    assert dg.device("cpu") == "cpu"
    assert dg.devices()[0] is dg.device("cpu")


def test_auto_resolves_to_cpu_without_cuda_and_says_why(caplog):
    with caplog.at_level("INFO", logger="devgrad"):
        dev = dg.device("auto")
    if dg.cuda_available():
        assert dev.type == "cuda"
    else:
        assert dev.type == "cpu"
        assert "using the CPU because" in caplog.text


@pytest.mark.parametrize("bad", ["tpu", "cuda:x", "cpu:1", "gpu0", ""])
def test_unknown_device_names_are_rejected_with_the_valid_forms(bad):
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N'|one CPU device"):
        dg.device(bad)


@needs_no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_requested_when_unavailable_says_why(spec):
    with pytest.raises(dg.DeviceError) as info:
        dg.device(spec)
    message = str(info.value)
    assert "CUDA is not available" in message and spec in message
    assert dg.cuda_unavailable_reason() in message
    assert "device='cpu'" in message


@needs_no_cuda
def test_unavailable_reason_distinguishes_missing_cupy_from_missing_driver():
    reason = dg.cuda_unavailable_reason()
    try:
        import cupy  # noqa: F401
    except ImportError:
        assert "not installed" in reason and "cupy-cuda12x" in reason
    except Exception:
        assert "failed to import" in reason
    else:
        assert "installed but" in reason


def test_probe_reports_missing_cupy(monkeypatch):
    block_import(monkeypatch, "cupy")
    monkeypatch.setattr(cupy_import.importlib.util, "find_spec", lambda name: None)
    state = cupy_import._probe()
    assert state["module"] is None
    assert "not installed" in state["reason"] and "cupy-cuda12x" in state["reason"]


def test_probe_survives_any_exception_at_import(monkeypatch):
    block_import(monkeypatch, "cupy", OSError("libcudart.so.12: cannot open shared object file"))
    monkeypatch.setattr(cupy_import, "_driver_missing", lambda: None)  # a machine with a CUDA driver
    state = cupy_import._probe()
    assert state["module"] is None and "failed to import" in state["reason"] and "libcudart" in state["reason"]


def test_without_a_cuda_driver_cupy_is_not_imported(monkeypatch, tmp_path):
    """CuPy installed but no driver library: the probe says so (with CuPy's version, read from its
    package) and never imports CuPy, which costs a CPU-only run 1-2 s of its start."""
    package = tmp_path / "cupy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_version.py").write_text("__version__ = '13.6.0'\n")
    monkeypatch.setattr(cupy_import.importlib.util, "find_spec",
                        lambda name: type("Spec", (), {"origin": str(package / "__init__.py")})())
    monkeypatch.setattr(cupy_import, "_DRIVER_LIBRARIES", {sys.platform: ("libdevgrad-no-such-driver.so.1",)})
    block_import(monkeypatch, "cupy", AssertionError("CuPy was imported without a CUDA driver"))
    state = cupy_import._probe()
    assert state["module"] is None and state["version"] == "13.6.0"
    assert state["reason"].startswith("CuPy 13.6.0 is installed but no CUDA driver or GPU is usable: the CUDA "
                                      "driver library did not load (libdevgrad-no-such-driver.so.1")


def test_default_device_from_environment(monkeypatch):
    monkeypatch.setenv("DEVGRAD_DEVICE", "cpu")
    assert dg.default_device() is dg.device("cpu")
    assert dg.zeros(2).device is dg.device("cpu")
    monkeypatch.setenv("DEVGRAD_DEVICE", "nonsense")
    with pytest.raises(dg.DeviceError, match="DEVGRAD_DEVICE='nonsense'"):
        dg.zeros(2)
    monkeypatch.delenv("DEVGRAD_DEVICE")
    assert dg.default_device() is dg.device("cpu")


def test_set_default_device():
    dg.set_default_device("cpu")
    try:
        assert dg.tensor([1.0]).device is dg.device("cpu")
    finally:
        dg.set_default_device(None)


def test_devices_pickle_by_name():
    assert pickle.loads(pickle.dumps(dg.device("cpu"))) is dg.device("cpu")


def test_mixing_devices_raises_naming_both_and_the_op():
    cpu = dg.tensor([1.0])
    other = dg.tensor([1.0])
    fake = dg.Device("cpu")  # a second, non-interned Device: the check runs without a GPU
    fake.index = 7
    other.device = fake
    with pytest.raises(dg.DeviceError, match=r"Mul: tensors are on different devices, cpu and cpu.*\.to\("):
        cpu * other


@pytest.mark.gpu
@pytest.mark.skipif(len(dg.devices()) < 2, reason="needs a GPU")
def test_mixing_cpu_and_cuda_raises():
    a = dg.tensor([1.0], device="cpu")
    b = dg.tensor([1.0], device="cuda")
    with pytest.raises(dg.DeviceError, match="Add: tensors are on different devices, cpu and cuda:0"):
        a + b
    assert (a.to("cuda") + b).device is b.device


def test_host_array_meeting_gpu_tensor_is_an_error(device):
    x = dg.tensor([1.0, 2.0], device=device)
    if device.type == "cpu":
        assert (x + np.array([1.0, 1.0])).numpy().tolist() == [2.0, 3.0]
    else:
        with pytest.raises(dg.DeviceError, match="NumPy array"):
            x + np.array([1.0, 1.0])


def test_memory_info_and_synchronize(device):
    device.synchronize()
    info = device.memory_info()
    assert all(isinstance(v, int) and v >= 0 for v in info.values()) and info


def test_work_on_a_second_gpu_runs_with_that_gpu_current(monkeypatch):
    """Ops, backward and optimizer updates on cuda:N (N > 0) activate device N.

    Without a second GPU here, a CPU-backed Device with index 1 stands in, and CuPy's
    device switch is replaced by a recorder.
    """
    import contextlib

    entered = []

    @contextlib.contextmanager
    def recording():  # the CPU's module is called only for a device of index != 0
        entered.append(1)
        yield

    monkeypatch.setattr(cpu_module, "activate", recording)  # the stand-in second device is a CPU one
    second = dg.Device("cpu", 1)
    w = dg.nn.Parameter(dg.Tensor._make(np.ones((3, 2)), second))
    x = dg.Tensor._make(np.ones((4, 2)), second)
    loss = dg.linear(x, w).relu().sum()
    after_forward = len(entered)
    assert after_forward >= 3 and set(entered) == {1}
    loss.backward()
    after_backward = len(entered)
    assert after_backward > after_forward
    dg.optim.SGD([w], lr=0.1).step()
    assert len(entered) > after_backward
    assert dg.device("cpu").activate() is dg.Device("cpu").activate()  # index 0: the shared no-op



def test_copy_and_gather_rows_make_new_arrays_on_the_device(device):
    """Device.copy (the checkpoint snapshot's copy; a memcpy on a GPU) and kernels.gather_rows (the
    loader's shuffle): new arrays on the same device with the same dtype, which later changes to
    the source do not reach."""
    src = device.put(np.arange(24, dtype=np.float32).reshape(6, 4))
    labels = device.put(np.arange(6, dtype=np.int64) * 10)
    copied = device.copy(src)
    index = device.put(np.array([5, 0, 0, 3], dtype=np.int64))
    with device.activate():
        rows, picked = device.kernels.gather_rows(src, index), device.kernels.gather_rows(labels, index)
        src += 100
    assert device.holds(copied) and device.holds(rows) and copied.dtype == np.float32
    np.testing.assert_array_equal(device.to_host(copied), np.arange(24, dtype=np.float32).reshape(6, 4))
    np.testing.assert_array_equal(device.to_host(rows), np.arange(24).reshape(6, 4)[[5, 0, 0, 3]])
    np.testing.assert_array_equal(device.to_host(picked), [50, 0, 0, 30])
    step = device.put(np.asarray(7.0))  # a 0-d step count
    assert float(device.to_host(device.copy(step))) == 7.0


def _parameters(fn) -> list:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def test_each_device_module_is_the_written_protocol():
    """Device delegates to one module per device: the CPU's module and a GPU's CudaDevice are
    both ``DeviceModule``s, with every method of the protocol taking the protocol's parameters
    (no device index: a GPU's object knows its own), so code written against one device runs
    on the other."""
    from devgrad.backend import cupy as cuda_module
    from devgrad.backend.protocol import DeviceModule

    gpu = cuda_module.open_device(0)
    assert isinstance(cpu_module, DeviceModule) and isinstance(gpu, DeviceModule)
    assert cpu_module.open_device(0) is cpu_module
    methods = [name for name, member in vars(DeviceModule).items()
               if inspect.isfunction(member) and not name.startswith("_")]
    assert len(methods) >= 15
    for name in methods:
        want = _parameters(getattr(DeviceModule, name))
        if name != "matmul":  # NumPy's matmul is a ufunc: no Python signature to read
            assert _parameters(getattr(cpu_module, name)) == want, name
        got = _parameters(getattr(gpu, name))  # may take more, each with a default (matmul's precision)
        assert got[:len(want)] == want and all(p[2] is not inspect.Parameter.empty for p in got[len(want):]), name
    for module in (cpu_module, gpu):
        for flag in ("SUPPORTS_GRAPHS", "HOST_READS_ARE_FREE", "IS_HOST", "UPDATES_NEED_SCRATCH"):
            assert isinstance(getattr(module, flag), bool), flag


def test_every_kernel_of_the_cpu_is_registered_for_cuda_with_the_same_parameters():
    """Each kernel registered for the CPU (the backend's primitives, the losses', the
    optimizers', the training loop's) has a CUDA twin with the same parameters, so a layer
    that calls ``device.kernels.<name>`` runs on either device."""
    import devgrad.experiment  # noqa: F401 - registers the training loop's kernels
    from devgrad.backend import registry

    cpu, cuda = registry.registered("cpu"), registry.registered("cuda")
    assert len(cpu) > 30 and {"sq_err", "adam_update_many", "class_sums", "fill_"} <= set(cpu)
    assert sorted(cpu) == sorted(cuda)
    for name in cpu:
        assert _parameters(registry.resolve(name, "cpu")) == _parameters(registry.resolve(name, "cuda")), name


def test_a_kernel_name_has_one_owner_and_a_missing_one_says_how_to_register_it():
    from devgrad.backend import registry

    table = registry.KernelTable("cpu")
    with pytest.raises(AttributeError, match="register_kernel"):
        table.no_such_kernel  # noqa: B018
    with pytest.raises(ValueError, match="already registered"):
        registry.register_kernel("sq_err", "cpu", lambda x, y: x)
    registry.register_kernel("sq_err", "cpu", registry.resolve("sq_err", "cpu"))  # the same one again: fine
    assert dg.device("cpu").kernel("sq_err") is registry.resolve("sq_err", "cpu")
