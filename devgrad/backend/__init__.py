"""Devices: where arrays live and which array module (NumPy or CuPy) computes on them.

Everything that differs between NumPy and CuPy lives in this package: the array module,
host<->device copies, scatter-add, synchronisation and memory statistics. Ops ask a
tensor's ``Device`` for ``xp`` and never branch on the device themselves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading

import numpy as np

from devgrad.backend import cupy as _cuda
from devgrad.backend import numpy as _cpu

log = logging.getLogger("devgrad")

DEVICE_HELP = "use 'auto', 'cpu', 'cuda' or 'cuda:N'"


class DeviceError(RuntimeError):
    """A device was asked for that does not exist here, or tensors on two devices met."""


class Device:
    """A place where arrays live: ``cpu`` (NumPy) or ``cuda:N`` (CuPy on GPU N).

    Devices are interned: ``device("cuda") is device("cuda:0")``, so identity comparison
    is a valid (and fast) equality test.
    """

    __slots__ = ("type", "index", "xp", "_impl", "updates_need_scratch", "__weakref__")

    def __init__(self, kind: str, index: int = 0):
        self.type = kind
        self.index = index
        self.xp = np if kind == "cpu" else _cuda.module()
        self._impl = _cpu if kind == "cpu" else _cuda  # the backend module: its fused kernels
        # sgd_update/adam_update want a scratch buffer for NumPy's chains of in-place calls;
        # a GPU's fused kernels need none, so optimizers keep none there.
        self.updates_need_scratch = kind == "cpu"

    @property
    def name(self) -> str:
        return "cpu" if self.type == "cpu" else f"cuda:{self.index}"

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

    # -- data movement ---------------------------------------------------------------
    def put(self, array):
        """Return ``array`` (host or any device) as an array on this device."""
        if self.type == "cpu":
            return _cpu.to_host(array) if isinstance(array, np.ndarray) else _cuda.to_host(array)
        return _cuda.to_device(array, self.index)

    def to_host(self, array) -> np.ndarray:
        """Copy an array of this device to a host NumPy array."""
        return array if self.type == "cpu" else _cuda.to_host(array)

    def activate(self):
        """Context manager that makes this GPU CuPy's current device (where new arrays and
        kernels go). A no-op for the CPU and for cuda:0, CuPy's default device."""
        if self.index == 0:
            return _NO_CONTEXT
        return _cuda.activate(self.index)

    # -- device-specific kernels -------------------------------------------------------
    def scatter_add(self, target, index, values) -> None:
        """target[index] += values with repeated indices accumulating."""
        self._impl.scatter_add(target, index, values)

    def generator(self, seed: int):
        """A random generator that draws directly on this device (for dropout masks)."""
        if self.type == "cpu":
            return _cpu.generator(seed)
        return _cuda.generator(seed, self.index)

    def uniform(self, generator, shape, dtype):
        """Uniform [0, 1) samples of ``shape``/``dtype`` from a generator of this device."""
        if self.type == "cpu":
            return _cpu.uniform(generator, shape, dtype)
        return _cuda.uniform(generator, shape, dtype, self.index)

    def sigmoid(self, x):
        """The logistic function on an array of this device, without overflow warnings (one
        kernel on a GPU)."""
        return self._impl.sigmoid(x)

    def act_grad(self, act: str, g, y):
        """dL/dz from dL/dy = ``g`` for y = act(z) ('relu', 'sigmoid' or 'tanh'), from the output y:
        one fused kernel on a GPU."""
        return self._impl.act_grad(act, g, y)

    def bias_act_(self, out, bias, act: str):
        """out ← act(out + bias) in place (``bias`` may be None): one fused kernel on a GPU."""
        return self._impl.bias_act_(out, bias, act)

    def bce_logits(self, z, y):
        """Per-element binary cross-entropy from logits, stable for any |z|; one kernel on a GPU."""
        return self._impl.bce_logits(z, y)

    def bce_logits_grad(self, z, y, g, scale):
        """Its gradient in z: (sigmoid(z) − y) times g per element (``scale`` None) or times the
        0-d g and ``scale``; one kernel on a GPU."""
        return self._impl.bce_logits_grad(z, y, g, scale)

    def softmax_xent(self, z, labels, smoothing: float):
        """Per-row softmax cross-entropy of logits (N, C) and integer labels, with label smoothing:
        (losses, probabilities); one kernel on a GPU."""
        return self._impl.softmax_xent(z, labels, smoothing)

    def softmax_xent_grad(self, probs, labels, smoothing: float, g, scale):
        """Its gradient: (probs − smoothed one-hot) times g per row (``scale`` None) or times the
        0-d g and ``scale``; one kernel on a GPU."""
        return self._impl.softmax_xent_grad(probs, labels, smoothing, g, scale)

    def sgd_update(self, p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize,
                   first) -> None:
        """One in-place SGD update of parameter array ``p`` (``buf``: momentum buffer or None;
        ``tmp``: scratch shaped like p; ``lr`` a number or a 0-d array of this device)."""
        self._impl.sgd_update(p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize,
                                   first)

    def adam_update(self, p, g, m, v, vmax, tmp, *, lr, step, betas, eps, weight_decay, decoupled,
                    maximize) -> None:
        """One in-place Adam/AdamW update (AMSGrad when ``vmax`` is an array); ``lr`` and ``step``
        may be numbers or 0-d arrays of this device (what a captured CUDA graph needs)."""
        self._impl.adam_update(p, g, m, v, vmax, tmp, lr, step, betas[0], betas[1], eps, weight_decay,
                                    decoupled, maximize)

    @property
    def supports_graphs(self) -> bool:
        """True where a step can be captured into a CUDA graph and replayed (CUDA devices)."""
        return self.type == "cuda"

    def capture(self, fn):
        """Record the kernels ``fn()`` launches into a CUDA graph; returns an object with
        ``result`` (what fn returned) and ``replay()``. CUDA only: check ``supports_graphs``."""
        if self.type != "cuda":
            raise DeviceError(f"CUDA graphs need a GPU; {self} has none (check device.supports_graphs first)")
        return _cuda.CapturedGraph(fn, self.index)

    @property
    def host_reads_are_free(self) -> bool:
        """True when reading a value back to Python costs no device sync (the CPU)."""
        return self.type == "cpu"

    def synchronize(self) -> None:
        """Wait until all queued work on this device has finished."""
        if self.type == "cuda":
            _cuda.synchronize(self.index)

    def memory_info(self) -> dict:
        """Memory statistics: host peak RSS on the CPU, pool/device bytes on a GPU."""
        if self.type == "cpu":
            return _cpu.memory_info()
        return _cuda.memory_info(self.index)

    def description(self) -> str:
        """Human-readable name, with the GPU model for CUDA devices."""
        if self.type == "cpu":
            return "cpu (NumPy)"
        return f"{self.name} ({_cuda.device_name(self.index)})"


_NO_CONTEXT = contextlib.nullcontext()
_devices: dict[str, Device] = {}
_devices_lock = threading.Lock()
_SPEC = re.compile(r"^(cpu|cuda|gpu)(?::(\d+))?$")


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return _cuda.available()


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or None when it can."""
    return _cuda.unavailable_reason()


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
    text = spec.strip().lower()
    if text == "auto":
        if cuda_available():
            return _intern("cuda", 0)
        log.info("device 'auto': using the CPU because %s", cuda_unavailable_reason())
        return _intern("cpu", 0)
    match = _SPEC.match(text)
    if match is None:
        raise ValueError(f"unknown device {spec!r}: {DEVICE_HELP}")
    kind, index = match.group(1), int(match.group(2) or 0)
    if kind == "cpu":
        if match.group(2) is not None and index != 0:
            raise ValueError(f"unknown device {spec!r}: there is one CPU device, 'cpu'")
        return _intern("cpu", 0)
    if not cuda_available():
        raise DeviceError(f"device {spec!r} was requested but CUDA is not available: "
                          f"{cuda_unavailable_reason()}. Use device='cpu' (or 'auto') to run on the CPU.")
    count = _cuda.device_count()
    if index >= count:
        raise DeviceError(f"device {spec!r} does not exist: {count} CUDA device(s) found "
                          f"(cuda:0..cuda:{count - 1})")
    return _intern("cuda", index)


def devices() -> list[Device]:
    """All usable devices: the CPU, then each CUDA GPU."""
    found = [_intern("cpu", 0)]
    if cuda_available():
        found += [_intern("cuda", i) for i in range(_cuda.device_count())]
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
    cp = _cuda.state()["module"]
    return cp is not None and isinstance(obj, cp.ndarray)


def cupy_version() -> str | None:
    """Installed CuPy version, or None when it does not import."""
    return _cuda.state()["version"]


__all__ = [
    "Device",
    "DeviceError",
    "cuda_available",
    "cuda_unavailable_reason",
    "cupy_version",
    "default_device",
    "device",
    "device_of",
    "devices",
    "is_device_array",
    "set_default_device",
]
