"""Run devgrad's CUDA kernel module without a GPU.

``devgrad.backend.cuda_sources.module_source()`` is the one CUDA source of every devgrad kernel
(grid-stride loops, no shared memory, no block synchronisation). With a small prelude, that
very text compiles for the host CPU: one block of one thread, so each loop walks every element
serially. This harness builds it with the host C++ compiler (does it compute what the NumPy
backend computes?) and offers a stand-in for ``cupy`` whose ``RawModule`` runs the host build,
so that the CUDA backend's launcher (argument binding, broadcasting, dtypes, the multi-tensor
tables) runs unchanged on NumPy arrays.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import shutil
import subprocess
import tempfile
import types
from pathlib import Path

import numpy as np

from devgrad.backend.cuda_sources import (ELEMENTWISE, HOST_PRELUDE, TABLE_CAPACITY, TABLE_FIELDS, function_name,
                                          module_source, params)

C_TYPES = {"float": np.float32, "double": np.float64}
_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def parse(name: str):
    """(in params, out params) of kernel ``name``, each a list of (raw, type, name)."""
    return params(name)


def compiler() -> str | None:
    return shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def compile_library(text: str, name: str) -> Path:
    """C++ ``text`` compiled into a shared library ``lib{name}.so`` in a temporary folder, which
    is removed when the test process exits (a loaded library stays mapped after that)."""
    folder = Path(tempfile.mkdtemp(prefix=f"devgrad-{name}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / f"{name}.cpp").write_text(text)
    library = folder / f"lib{name}.so"
    subprocess.run([compiler(), "-O1", "-shared", "-fPIC", "-o", str(library), str(folder / f"{name}.cpp")],
                   check=True, capture_output=True, text=True)
    return library


_library: dict = {}


def _build(text: str):
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    if key not in _library:
        _library[key] = ctypes.CDLL(str(compile_library(text, "kernels")))
    return _library[key]


def host_library():
    """The whole kernel module, float and double, compiled for the host CPU (cached)."""
    return _build(module_source(host=True))


class _Table(ctypes.Structure):
    _fields_ = ([(name, (ctypes.c_uint64 if kind == "u8" else ctypes.c_double) * TABLE_CAPACITY)
                 for name, kind in TABLE_FIELDS]
                + [("start", ctypes.c_int64 * (TABLE_CAPACITY + 1)), ("count", ctypes.c_int64)])


def _c_arg(value):
    """A launch argument as CuPy passes it: an array by its address, except a 1-element array of
    a structured dtype (passed by value, as CuPy passes NumPy arrays); numpy scalars by value."""
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            table = _Table()
            ctypes.memmove(ctypes.addressof(table), value.ctypes.data, ctypes.sizeof(_Table))
            assert value.dtype.itemsize == ctypes.sizeof(_Table)
            return table
        return ctypes.c_void_p(value.ctypes.data)
    if isinstance(value, np.floating):
        return ctypes.c_double(float(value)) if value.dtype == np.float64 else ctypes.c_float(float(value))
    if isinstance(value, np.int32):
        return ctypes.c_int32(int(value))
    if isinstance(value, np.int64):
        return ctypes.c_int64(int(value))
    if isinstance(value, np.uint64):
        return ctypes.c_uint64(int(value))
    if isinstance(value, np.uint32):
        return ctypes.c_uint32(int(value))
    raise TypeError(f"kernel argument of type {type(value).__name__}: pass NumPy scalars with an explicit dtype "
                    "(CuPy would guess a C type for a Python number)")


class HostFunction:
    """A kernel of the host build, called as CuPy calls a RawModule function."""

    def __init__(self, library, name: str):
        self.name = name
        self.fn = getattr(library, name)
        self.calls = 0

    def __call__(self, grid, block, args):
        assert len(grid) >= 1 and len(block) >= 1 and grid[0] >= 1 and block[0] >= 1, (grid, block)
        self.calls += 1
        self.fn(*[_c_arg(a) for a in args])


class HostRawModule:
    """``cupy.RawModule`` over the host build of the same source."""

    def __init__(self, code: str, options=()):
        self.library = _build(HOST_PRELUDE + code)

    def get_function(self, name: str) -> HostFunction:
        return HostFunction(self.library, name)


def run_on_host(name: str, **values) -> None:
    """Run kernel ``name`` once per element of its (same-shaped) element arrays; outputs are
    updated in place. Raw arrays may have any size; scalar parameters are numbers."""
    ins, outs = parse(name)
    elements = [values[p] for raw, t, p in ins + outs if t == "T" and not raw]
    dtype, n = elements[0].dtype, elements[0].size
    args = []
    for raw, typ, pname in ins + outs:
        value = values[pname]
        if raw or typ == "T":
            want = dtype if typ == "T" else np.dtype(typ)
            assert value.dtype == want and value.flags.c_contiguous, pname
            assert raw or value.size == n, pname
            args += [value] if raw else [value, np.int64(value.size)]
        elif typ == "float64":
            args += [np.uint64(0), np.float64(value)]
        else:
            args.append(np.dtype(typ).type(value))
    HostFunction(host_library(), function_name(name, _CTYPE[dtype]))((1,), (1,), (*args, np.int64(n)))


class _HostCupy:
    """A stand-in for the cupy module: NumPy's functions, and RawModule on the host build."""

    RawModule = HostRawModule
    # the host "GPU": device 0, of an architecture no ready-made module is built for
    cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0),
                                 Device=lambda *index: types.SimpleNamespace(compute_capability="host"))

    def __getattr__(self, name):
        return getattr(np, name)


def host_cupy():
    """A stand-in for the cupy module with what devgrad's CUDA backend calls, on NumPy."""
    return _HostCupy()


def host_address(array) -> int:
    """``cuda_kernels.address`` for NumPy arrays."""
    return array.ctypes.data


__all__ = ["C_TYPES", "ELEMENTWISE", "HostRawModule", "host_cupy", "host_library", "run_on_host"]
