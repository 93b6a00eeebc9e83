"""Devices: where arrays live and which array module (NumPy or CuPy) computes on them.

Everything that differs between NumPy and CuPy lives in this package, one *device module*
per kind of device — ``numpy`` (the CPU) and ``cupy`` (CUDA GPUs) — each giving, per device,
an object of the protocol written in ``protocol.DeviceModule``: the array module,
host<->device copies, RNG, streams and synchronisation, memory statistics, graph capture, the
GEMM seam (``matmul``) and a launcher of compiled kernels. ``Device`` delegates to it and never
asks which kind it is; ops ask a tensor's ``Device`` for ``xp``, ``matmul`` and ``kernels``.
Kernels are registered by name and device kind (``registry``): the backend's primitives here,
each layer's own (losses, optimizer updates, metric sums) next to the code that uses them. A
new device kind is one more module in ``_DEVICE_MODULES``; CUDA's is imported when a CUDA
device is first made, so a CPU-only process loads no CUDA code.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import threading

import numpy as np

from devgrad.backend import cpu_kernels, cupy_import
from devgrad.backend import numpy as _cpu
from devgrad.backend.capturing import (
    CaptureError, is_capturing, recording_for_replay, refuse_random_draws, refuse_while_capturing,
)
from devgrad.backend.capturing import state as capture_state
from devgrad.backend.precision import get_float32_matmul_precision, set_float32_matmul_precision
from devgrad.backend.protocol import DeviceModule
from devgrad.backend.registry import KernelTable, kernel_table, register_kernel, register_kernels

log = logging.getLogger("devgrad")

DEVICE_HELP = "use 'auto', 'cpu', 'cuda' or 'cuda:N'"
# Each kind's device module: the module, or its dotted path, imported when a device of the kind
# is first made (CuPy, cuBLAS through ctypes and the kernel sources come with CUDA's).
_DEVICE_MODULES: dict = {"cpu": _cpu, "cuda": "devgrad.backend.cupy"}

# The backend's own kernels: array primitives every layer uses (fills, sums, the activations the
# fused Linear applies, scatter/gather, launch counts). CUDA's are imported on first use.
PRIMITIVES = ("scatter_add", "sigmoid", "act_grad", "bias_act_", "fill_", "full", "mul", "gather_rows",
              "launch_counts", "sum_axes")
for _name in PRIMITIVES:
    register_kernel(_name, "cpu", getattr(cpu_kernels, _name))
    # a sum is a GEMM with a ones vector on a GPU: CUDA's GEMM seam has it
    register_kernel(_name, "cuda", f"devgrad.backend.{'cuda_gemm' if _name == 'sum_axes' else 'cuda_kernels'}")


class DeviceError(RuntimeError):
    """A device was asked for that does not exist here, or tensors on two devices met."""


# How a library call runs on the CPU instead (the command line says it in its own words: --device cpu).
CPU_ADVICE = "Use device='cpu' (or 'auto') to run on the CPU."



class Device:
    """A place where arrays live: ``cpu`` (NumPy) or ``cuda:N`` (CuPy on GPU N).

    Devices are interned: ``device("cuda") is device("cuda:0")``, so identity comparison
    is a valid (and fast) equality test. ``kernels`` holds the kernels registered for the
    device's kind (``device.kernels.adam_update_many(...)``, ``device.kernel(name)``); the
    capability flags come from the device module.
    """

    __slots__ = ("type", "index", "module", "xp", "kernels", "matmul", "supports_graphs", "host_reads_are_free",
                 "is_host", "updates_need_scratch", "name", "__weakref__")

    def __init__(self, kind: str, index: int = 0):
        module = _open_device(kind, index)
        self.type = kind
        self.index = index
        self.module: DeviceModule = module
        self.xp = module.array_module()
        self.kernels: KernelTable = kernel_table(kind)
        # x @ y with NumPy's matmul rules: the one GEMM seam every matrix product goes through
        # (cuBLAS through ctypes on a GPU, capturable into CUDA graphs); the module's function
        # itself, so the CPU pays no wrapper.
        self.matmul = module.matmul
        self.supports_graphs = module.SUPPORTS_GRAPHS  # a step can be captured into a CUDA graph
        self.host_reads_are_free = module.HOST_READS_ARE_FREE  # reading a value back costs no device sync
        self.is_host = module.IS_HOST  # host NumPy arrays are this device's own
        # sgd_update/adam_update want a scratch buffer for NumPy's chains of in-place calls;
        # a GPU's fused kernels need none, so optimizers keep none there.
        self.updates_need_scratch = module.UPDATES_NEED_SCRATCH
        self.name = kind if kind == "cpu" else f"{kind}:{index}"

    def __repr__(self) -> str:
        return f"device('{self.name}')"

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (ValueError, DeviceError):
                return False
        return self is other

    def __hash__(self) -> int:
        return hash(self.name)

    def __reduce__(self):
        # Pickles as its name so devices travel to worker processes.
        return (device, (self.name,))

    def kernel(self, name: str):
        """The kernel registered as ``name`` for this device's kind (``devgrad.backend.register_kernel``)."""
        return getattr(self.kernels, name)

    # -- data movement ---------------------------------------------------------------
    def put(self, array):
        """Return ``array`` (host data, or an array of any device) as an array on this device."""
        source = None
        if not isinstance(array, np.ndarray | np.generic) and is_device_array(array):
            source = device_of(array)
            if source is self:
                return array
        # before any transfer: reading another GPU's array back would itself break the capture
        if is_capturing():
            refuse_while_capturing("host data was copied to the device" if source is None else
                                   f"data of {source} was copied to the device", "a replay would not copy it again. "
                                   "Make it a tensor of this device before the step, or an input of the step")
        if source is not None:
            array = source.to_host(array)
        return self.module.to_device(array)

    def to_host(self, array) -> np.ndarray:
        """Copy an array of this device to a host NumPy array."""
        return self.module.to_host(array)

    def copy(self, array):
        """A copy of an array of this device, on this device (on a GPU a memcpy when the array is
        contiguous: no kernel to launch or compile)."""
        return self.module.copy(array)

    def holds(self, array) -> bool:
        """True when ``array`` is an array of this very device (no transfer needed to use it)."""
        return self.module.holds(array)

    def activate(self):
        """Context manager that makes this device current (where new arrays and kernels go).
        A no-op for the CPU and for cuda:0, CuPy's default device."""
        if self.index == 0:
            return _NO_CONTEXT
        return self.module.activate()

    def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` with this device current: where ops and the backward walk send the
        work of a tensor on a second GPU (they call ``fn`` directly for index 0, the hot path)."""
        with self.activate():
            return fn(*args, **kwargs)

    # -- compute -----------------------------------------------------------------------
    def generator(self, seed: int):
        """A random generator that draws directly on this device (for dropout masks)."""
        refuse_random_draws()
        return self.module.generator(seed)

    def uniform(self, generator, shape, dtype, half_open: bool = True):
        """Uniform [0, 1) samples of ``shape``/``dtype`` from a generator of this device.
        ``half_open=False`` lets the draws also be exactly 1 (a GPU then hands over cuRAND's
        (0, 1] draws as they come, one kernel fewer: dropout's mask kernel counts a 1 as a 0).
        Refused while a step is being captured: a replay would repeat the same numbers."""
        refuse_random_draws()
        return self.module.uniform(generator, shape, dtype, half_open)

    def capture(self, fn):
        """Record the kernels ``fn()`` launches into a CUDA graph; returns an object with
        ``result`` (what fn returned) and ``replay()``. Check ``supports_graphs`` first."""
        if not self.supports_graphs:
            raise DeviceError(f"CUDA graphs need a GPU; {self} has none (check device.supports_graphs first)")
        previous = capture_state.device

        def recorded():
            capture_state.device = self  # what must not happen while recording checks this (uniform)
            try:
                return fn()
            finally:
                capture_state.device = previous

        return self.module.capture(recorded)

    def synchronize(self) -> None:
        """Wait until all queued work on this device has finished."""
        self.module.synchronize()

    def memory_info(self) -> dict:
        """Memory statistics: host peak RSS on the CPU, pool/device bytes on a GPU."""
        return self.module.memory_info()

    def peak_bytes(self, fn) -> int:
        """Extra memory one call of ``fn`` needs at its peak (host allocations on the CPU, memory
        pool growth on a GPU)."""
        return self.module.peak_bytes(fn)

    def architecture(self) -> str | None:
        """The compute capability kernels are compiled for ("90" for an H100); None on the CPU."""
        return self.module.architecture()

    def description(self) -> str:
        """Human-readable name, with the GPU model for CUDA devices."""
        return self.module.description()


def _open_device(kind: str, index: int) -> DeviceModule:
    """Device ``index`` of ``kind``, from its device module (imported now if it is not yet)."""
    module = _DEVICE_MODULES[kind]
    if isinstance(module, str):
        module = _DEVICE_MODULES[kind] = importlib.import_module(module)
    return module.open_device(index)


_NO_CONTEXT = contextlib.nullcontext()
_devices: dict[str, Device] = {}
_devices_lock = threading.Lock()
_SPEC = re.compile(r"^(cpu|cuda|gpu)(?::(\d+))?$")


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return cupy_import.available()


def cuda_started() -> bool:
    """Has this process already loaded CuPy on a GPU? (Checked without importing anything: a
    process that has must not fork workers, which would inherit a CUDA context they cannot use.)"""
    return bool(cupy_import._state.get("module"))


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or None when it can."""
    return cupy_import.unavailable_reason()


def _intern(type_: str, index: int) -> Device:
    key = "cpu" if type_ == "cpu" else f"cuda:{index}"
    dev = _devices.get(key)
    if dev is None:
        with _devices_lock:
            dev = _devices.get(key)
            if dev is None:
                dev = _devices[key] = Device(type_, index)
    return dev


def device(spec: str | Device | None = None) -> Device:
    """Resolve a device spec: 'auto', 'cpu', 'cuda', 'cuda:N' (or a Device, or None = default).

    'auto' picks CUDA when CuPy works and sees a GPU, else the CPU (and logs why).
    Asking for 'cuda' where it is unavailable raises DeviceError saying why and how to fix it.
    """
    if spec is None:
        return default_device()
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string or Device, got {type(spec).__name__}; {DEVICE_HELP}")
    kind, index = parse_device(spec)
    if kind == "auto":
        if cuda_available():
            return _intern("cuda", 0)
        log.info("device 'auto': using the CPU because %s", cuda_unavailable_reason())
        return _intern("cpu", 0)
    if kind == "cpu":
        return _intern("cpu", 0)
    if not cuda_available():
        raise DeviceError(f"device {spec!r} was requested but CUDA is not available: "
                          f"{cuda_unavailable_reason()}. {CPU_ADVICE}")
    count = cupy_import.device_count()
    if index >= count:
        raise DeviceError(f"device {spec!r} does not exist: {count} CUDA device(s) found "
                          f"(cuda:0..cuda:{count - 1})")
    return _intern("cuda", index)


def parse_device(spec: str) -> tuple[str, int]:
    """The spelling of a device: 'auto', 'cpu', 'cuda', 'cuda:N' (and 'gpu', 'gpu:N') as
    (kind, index), whatever this machine has; ValueError for anything else."""
    text = spec.strip().lower()
    if text == "auto":
        return "auto", 0
    match = _SPEC.match(text)
    if match is None:
        raise ValueError(f"unknown device {spec!r}: {DEVICE_HELP}")
    kind, index = match.group(1), int(match.group(2) or 0)
    if kind == "cpu":
        if index != 0:
            raise ValueError(f"unknown device {spec!r}: there is one CPU device, 'cpu'")
        return "cpu", 0
    return "cuda", index


def devices() -> list[Device]:
    """All usable devices: the CPU, then each CUDA GPU."""
    found = [_intern("cpu", 0)]
    if cuda_available():
        found += [_intern("cuda", i) for i in range(cupy_import.device_count())]
    return found


_default: dict = {"explicit": None, "env": None, "device": None}


def set_default_device(spec: str | Device | None) -> None:
    """Set the device new tensors go to when no device= is given (None: back to the default)."""
    _default["explicit"] = None if spec is None else device(spec)


def default_device() -> Device:
    """The default device: set_default_device(), else $DEVGRAD_DEVICE, else the CPU."""
    if _default["explicit"] is not None:
        return _default["explicit"]
    env = os.environ.get("DEVGRAD_DEVICE", "")
    if _default["device"] is None or _default["env"] != env:
        try:
            resolved = device(env) if env else _intern("cpu", 0)
        except (ValueError, DeviceError) as exc:
            raise DeviceError(f"DEVGRAD_DEVICE={env!r} is not usable: {exc}") from None
        _default.update(env=env, device=resolved)
    return _default["device"]


def device_of(array) -> Device:
    """The device an existing NumPy or CuPy array lives on."""
    if isinstance(array, np.ndarray | np.generic):
        return _intern("cpu", 0)
    dev = getattr(array, "device", None)
    index = getattr(dev, "id", None)
    if index is None:
        raise TypeError(f"cannot tell which device a {type(array).__name__} lives on")
    return _intern("cuda", int(index))


def is_device_array(obj) -> bool:
    """True for NumPy arrays, and for CuPy arrays when CuPy is loaded."""
    if isinstance(obj, np.ndarray):
        return True
    if type(obj).__module__.split(".")[0] != "cupy":
        return False
    cp = cupy_import.state()["module"]
    return cp is not None and isinstance(obj, cp.ndarray)


def kernel_cache_dir():
    """The folder of CuPy's on-disk kernel cache (whether or not CuPy is installed)."""
    return cupy_import.kernel_cache_dir()


def cupy_version() -> str | None:
    """Installed CuPy version, or None when it does not import."""
    return cupy_import.state()["version"]


__all__ = [
    "CPU_ADVICE",
    "PRIMITIVES",
    "CaptureError",
    "Device",
    "DeviceError",
    "DeviceModule",
    "KernelTable",
    "cuda_available",
    "cuda_started",
    "cuda_unavailable_reason",
    "cupy_version",
    "default_device",
    "device",
    "device_of",
    "devices",
    "get_float32_matmul_precision",
    "is_device_array",
    "kernel_cache_dir",
    "kernel_table",
    "parse_device",
    "recording_for_replay",
    "register_kernel",
    "register_kernels",
    "set_default_device",
    "set_float32_matmul_precision",
]
