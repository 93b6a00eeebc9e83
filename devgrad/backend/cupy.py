"""The CUDA device module: CuPy arrays in GPU memory.

``open_device(index)`` gives the ``CudaDevice`` of GPU ``index``, which satisfies
``devgrad.backend.protocol.DeviceModule`` as ``devgrad.backend.numpy`` does for the CPU.
Imported when a CUDA device is first made; CuPy itself is imported lazily and defensively by
``cupy_import``. The primitive kernels, the generic launcher and the GEMM seam are in
``cuda_kernels``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from devgrad.backend import cublas, cuda_gemm, cuda_kernels
from devgrad.backend.cupy_import import module

NAME = "cuda"


def open_device(index: int) -> CudaDevice:
    """The device module of GPU ``index``."""
    return CudaDevice(index)


class CudaDevice:
    """GPU ``index``: what ``Device`` delegates to (``devgrad.backend.protocol.DeviceModule``)."""

    SUPPORTS_GRAPHS = True
    HOST_READS_ARE_FREE = False  # reading a value back waits for the GPU
    IS_HOST = False
    UPDATES_NEED_SCRATCH = False  # one fused kernel per update: no scratch buffer
    matmul = staticmethod(cuda_gemm.matmul)  # the GEMM seam: cuBLAS through ctypes, capturable
    launch = staticmethod(cuda_kernels.launch)  # devgrad's compiled kernels, by name

    def __init__(self, index: int):
        self.index = index

    def array_module(self):
        """CuPy."""
        return module()

    def activate(self):
        """CuPy's context manager making this GPU the current device."""
        return module().cuda.Device(self.index)

    def to_device(self, array):
        """Copy a host array onto this GPU (an array already there is returned as is)."""
        cp = module()
        with cp.cuda.Device(self.index):
            return cp.asarray(array)

    def to_host(self, array) -> np.ndarray:
        """Copy a GPU array into host memory (this synchronizes)."""
        if isinstance(array, np.ndarray):
            return array
        return module().asnumpy(array)

    def copy(self, array):
        """A copy of a GPU array: a device-to-device memcpy when it is contiguous (CuPy's own copy is an
        elementwise kernel, one more NVRTC compilation per dtype on a fresh machine)."""
        cp = module()
        with cp.cuda.Device(array.device.id):
            out = cp.empty(array.shape, dtype=array.dtype)
            cp.copyto(out, array)  # a memcpy for a C-contiguous array of the same dtype and size
        return out

    def holds(self, array) -> bool:
        """True for CuPy arrays on this GPU."""
        cp = module()
        return isinstance(array, cp.ndarray) and array.device.id == self.index

    def generator(self, seed: int):
        """CuPy's seeded generator (cuRAND) on this GPU."""
        cp = module()
        with cp.cuda.Device(self.index):
            return cp.random.RandomState(seed)

    def uniform(self, gen, shape, dtype, half_open: bool = True):
        """Uniform draws in [0, 1): cuRAND's, moved from its (0, 1] by devgrad's kernel where CuPy's
        random_sample uses one of its own (one more compilation on a fresh machine). With
        ``half_open=False``, cuRAND's draws as they come (dropout's: its kernel counts a 1 as a 0)."""
        cp = module()
        dtype = np.dtype(dtype)
        with cp.cuda.Device(self.index):
            if dtype in (np.float32, np.float64):
                raw = getattr(gen, "_random_sample_raw", None)  # CuPy's cuRAND call, before that kernel
                if raw is None:  # a CuPy without it: its own sampler
                    return gen.random_sample(shape, dtype=dtype)
                draws = raw(shape, dtype)
                return cuda_kernels.unit_interval_(draws) if half_open else draws
            return gen.random_sample(shape).astype(dtype)

    def capture(self, fn) -> CapturedGraph:
        """The kernels ``fn()`` launches, recorded once into a CUDA graph."""
        return CapturedGraph(fn, self.index)

    def synchronize(self) -> None:
        """Wait for this GPU's queued work."""
        module().cuda.Device(self.index).synchronize()

    def memory_info(self) -> dict:
        """The memory pool's and the GPU's bytes."""
        cp = module()
        pool = cp.get_default_memory_pool()
        with cp.cuda.Device(self.index):
            free, total = cp.cuda.runtime.memGetInfo()
        return {"pool_used_bytes": int(pool.used_bytes()), "pool_total_bytes": int(pool.total_bytes()),
                "device_free_bytes": int(free), "device_total_bytes": int(total)}

    def peak_bytes(self, fn) -> int:
        """Bytes the memory pool had to grow by for one call of ``fn`` (its blocks freed first)."""
        cp = module()
        pool = cp.get_default_memory_pool()
        with cp.cuda.Device(self.index):
            cp.cuda.Device(self.index).synchronize()
            pool.free_all_blocks()
            before = pool.total_bytes()
            fn()
            cp.cuda.Device(self.index).synchronize()
        return int(pool.total_bytes() - before)

    def architecture(self) -> str:
        """This GPU's compute capability as NVRTC's sm_ number: "90" for an H100."""
        return str(module().cuda.Device(self.index).compute_capability)

    def description(self) -> str:
        """``cuda:N (model name)``."""
        cp = module()
        try:
            props = cp.cuda.runtime.getDeviceProperties(self.index)
            name = props["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:
            name = "CUDA device"
        return f"cuda:{self.index} ({name})"


class CapturedGraph:
    """The kernels ``fn()`` launches on GPU ``index``, recorded once into a CUDA graph.

    Capture runs ``fn``'s Python code but executes nothing on the GPU. Every array ``fn``
    allocates comes from a memory pool private to this graph: its blocks are never handed to
    anyone else, so the addresses the graph reads and writes stay valid for every replay.
    ``result`` is what ``fn`` returned (arrays that each replay overwrites). Matrix products
    inside ``fn`` go through devgrad's cuBLAS handle (``cublas``), whose stream follows the
    capturing stream; CuPy's own cuBLAS wrappers refuse to run during capture.
    """

    def __init__(self, fn, index: int):
        cp = module()
        self.pool = cp.cuda.MemoryPool()
        with cp.cuda.Device(index):
            cublas.handle(index)  # created outside the capture: creating it allocates device memory
            stream = cp.cuda.Stream(non_blocking=True)  # capture needs a stream other than the default
            cp.cuda.Device(index).synchronize()  # eager work queued before capture is finished
            with stream, cp.cuda.using_allocator(self.pool.malloc), cuda_gemm.keep_alive_for_graph() as kept:
                # kept: the cached ones vectors the graph reads, alive as long as the graph
                self.kept = kept
                stream.begin_capture()
                try:
                    self.result = fn()
                except BaseException:
                    with contextlib.suppress(Exception):  # the capture is invalid anyway: report fn's error
                        stream.end_capture()
                    raise
                self.graph = stream.end_capture()
            self.graph.upload(stream)
            stream.synchronize()

    def replay(self) -> None:
        """Launch the recorded kernels on the current stream (ordered after earlier work on it)."""
        cp = module()
        self.graph.launch(stream=cp.cuda.get_current_stream())
