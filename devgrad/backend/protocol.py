"""The device protocol: what one device (the CPU, one GPU) provides to ``Device``.

A device kind is one module with ``open_device(index) -> DeviceModule``: ``devgrad.backend.numpy``
(the CPU; the module itself is its one device) and ``devgrad.backend.cupy`` (one ``CudaDevice``
per GPU). ``Device`` delegates to it and never asks which kind it is. Kernels are not part of
it: the backend's own primitives (``fill_``, ``full``, ``sum_axes``, ...) and every layer's
domain kernels are registered by name and device kind (``devgrad.backend.registry``), and the
device module offers ``launch`` to run its compiled kernels by name.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable


class CapturedGraph(Protocol):
    """What ``DeviceModule.capture`` returns: the recorded work and a way to run it again."""

    result: Any  # what the recorded function returned (arrays each replay overwrites)

    def replay(self) -> None:
        """Run the recorded work again, on the current stream."""


@runtime_checkable
class DeviceModule(Protocol):
    """One device: its arrays, transfers, RNG, streams and synchronisation, memory, graph capture,
    the GEMM seam and a kernel launcher. Capability flags tell the layers above what is cheap."""

    SUPPORTS_GRAPHS: bool  # a step can be captured into a graph and replayed
    HOST_READS_ARE_FREE: bool  # reading a value back to Python costs no device sync
    IS_HOST: bool  # host NumPy arrays are this device's own arrays
    UPDATES_NEED_SCRATCH: bool  # optimizer updates want a scratch buffer per parameter

    # -- arrays and transfers ------------------------------------------------------------------
    def array_module(self) -> Any:
        """The array module ops compute with (``numpy`` or ``cupy``)."""

    def to_device(self, array: Any) -> Any:
        """Host data (or a host array) as an array of this device."""

    def to_host(self, array: Any) -> Any:
        """An array of this device as a host NumPy array."""

    def copy(self, array: Any) -> Any:
        """A copy of an array of this device, on this device."""

    def holds(self, array: Any) -> bool:
        """True when ``array`` is an array of this very device."""

    # -- random numbers --------------------------------------------------------------------------
    def generator(self, seed: int) -> Any:
        """A seeded generator that draws on this device."""

    def uniform(self, gen: Any, shape: Any, dtype: Any, half_open: bool = True) -> Any:
        """Uniform draws in [0, 1) (``half_open=False`` also allows exactly 1)."""

    # -- streams, synchronisation, memory ---------------------------------------------------------
    def activate(self) -> AbstractContextManager:
        """A context manager that makes this device current."""

    def synchronize(self) -> None:
        """Wait until all queued work on this device has finished."""

    def memory_info(self) -> dict:
        """Memory statistics in bytes."""

    def peak_bytes(self, fn: Callable[[], Any]) -> int:
        """Extra memory one call of ``fn`` needs at its peak."""

    # -- capture, the GEMM seam, kernels --------------------------------------------------------
    def capture(self, fn: Callable[[], Any]) -> CapturedGraph:
        """Record the work ``fn()`` does into a graph (refused where ``SUPPORTS_GRAPHS`` is False)."""

    def matmul(self, x: Any, y: Any) -> Any:
        """``x @ y`` with NumPy's matmul rules: the one seam every matrix product goes through."""

    def launch(self, name: str, *args: Any) -> Any:
        """Run the device's compiled kernel ``name`` on ``args`` (a device without compiled
        kernels refuses: its kernels are registered functions)."""

    # -- description -----------------------------------------------------------------------------
    def architecture(self) -> str | None:
        """The architecture kernels are compiled for ("90" for an H100); None on the CPU."""

    def description(self) -> str:
        """A human-readable name (the GPU's model for CUDA devices)."""
