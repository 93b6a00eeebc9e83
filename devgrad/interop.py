"""Sharing tensors with other array libraries through DLPack, without copying.

``dg.from_dlpack(obj)`` wraps any DLPack producer (a NumPy or CuPy array, a PyTorch or JAX
tensor) as a devgrad Tensor on the same memory; ``Tensor.__dlpack__`` (in core) is the other
direction. A write through one side is seen by the other.
"""

from __future__ import annotations

from devgrad.backend import device as resolve_device
from devgrad.core import Tensor

# DLPack's device types (dlpack.h, DLDeviceType) and the devgrad devices that hold their memory.
_DLPACK_DEVICES = {1: "cpu", 2: "cuda", 3: "cpu"}  # kDLCPU, kDLCUDA, kDLCUDAHost (pinned: host memory)
_DLPACK_NAMES = {4: "OpenCL", 7: "Vulkan", 8: "Metal", 9: "VPI", 10: "ROCm", 13: "CUDA managed", 14: "oneAPI"}


def from_dlpack(obj, *, device=None) -> Tensor:
    """A Tensor sharing the memory of ``obj`` (anything with ``__dlpack__``: NumPy, CuPy, PyTorch,
    JAX arrays). With ``device`` other than the one the memory is on, the data is moved there
    (a copy, as ``.to(device)`` makes)."""
    if isinstance(obj, Tensor):
        shared = obj.detach()
        return shared if device is None else shared.to(device)
    if not hasattr(obj, "__dlpack__") or not hasattr(obj, "__dlpack_device__"):
        raise TypeError(f"from_dlpack: a {type(obj).__name__} is not a DLPack producer (it has no __dlpack__ and "
                        "__dlpack_device__); pass a NumPy, CuPy or PyTorch array, or use dg.tensor(...) to copy")
    kind, index = obj.__dlpack_device__()
    name = _DLPACK_DEVICES.get(int(kind))
    if name is None:
        what = _DLPACK_NAMES.get(int(kind), f"DLPack device type {int(kind)}")
        raise TypeError(f"from_dlpack: the data lives on {what} memory, which devgrad cannot use; move it to the "
                        "CPU or a CUDA GPU first")
    source = resolve_device(name if name == "cpu" else f"cuda:{int(index)}")
    with source.activate():
        array = source.xp.from_dlpack(obj)
    shared = Tensor._make(array, source)
    return shared if device is None or resolve_device(device) is source else shared.to(device)
