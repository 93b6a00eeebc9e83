"""Run devgrad's CUDA kernel module without a GPU.

``devgrad.backend.cuda_sources.module_source()`` is the one CUDA source of every devgrad kernel
(grid-stride loops, no shared memory, no block synchronisation). With a small prelude, that
very text compiles for the host CPU: one block of one thread, so each loop walks every element
serially. This harness builds it with the host C++ compiler (does it compute what the NumPy
backend computes?) and offers a stand-in for ``cupy`` whose ``RawModule`` runs the host build,
so that the CUDA backend's launcher (argument binding, broadcasting, dtypes, the multi-tensor
tables) runs unchanged on NumPy arrays. Every launch of the host build is first checked against
the kernel's declared parameters the way a GPU would read them (``check_arguments``).
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import re
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


# A kernel's C parameter types, and what CuPy must be given for each. CuPy packs a launch's
# arguments by their own types (a NumPy scalar by its size, an array by its address), never by
# the kernel's declaration: an np.int32 where the kernel takes a long long, or a float64 array
# where it takes float*, runs on the GPU and reads garbage. The host build, called through ctypes,
# would often not notice, so every launch of the host build is checked against the declaration.
_KERNEL = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')
_BY_VALUE = {"double": np.float64, "float": np.float32, "int": np.int32, "long long": np.int64,
             "unsigned int": np.uint32, "unsigned long long": np.uint64}
# What an array given for a pointer parameter may hold: typed data must be of that very type;
# "unsigned int*" is raw 4-byte words (fill and gather_rows move any dtype's bytes as words), an
# "unsigned long long*" counter any 8-byte integer, "void*" anything.
_POINTEE = {"double": lambda d: d == np.float64, "float": lambda d: d == np.float32,
            "int": lambda d: d == np.int32, "long long": lambda d: d == np.int64,
            "unsigned int": lambda d: d.itemsize % 4 == 0,
            "unsigned long long": lambda d: d.kind in "iu" and d.itemsize == 8, "void": lambda d: True}


def signatures(code: str) -> dict:
    """{kernel name: [(parameter name, C type without const), ...]} of a module's source."""
    found = {}
    for name, declared in _KERNEL.findall(code):
        found[name] = [(param.split()[-1], " ".join(param.split()[:-1]).replace("const ", "").strip())
                       for param in declared.split(",")]
    return found


@functools.cache
def _host_signatures() -> dict:
    return signatures(module_source(host=True))


# The array type that stands for device memory, when a test tells host and device arrays apart
# (tests/backend/test_cuda_path.py's recording arrays): a pointer parameter then refuses any other
# array. On a GPU a NumPy array given for a pointer is passed by value, not as device memory.
device_array: dict = {"type": None}


def check_arguments(kernel: str, params: list, args) -> None:
    """TypeError unless ``args`` are what CuPy must be given for ``params`` (see above)."""
    if len(args) != len(params):
        raise TypeError(f"{kernel}: {len(args)} arguments for {len(params)} parameters")
    element = C_TYPES.get(kernel.rsplit("_", 1)[-1])  # T: the module's element type
    for (name, ctype), arg in zip(params, args):
        if ctype.endswith("*"):
            base = ctype[:-1].strip()
            fits = (lambda d: d == element) if base == "T" else _POINTEE[base]
            if isinstance(arg, np.uint64):  # a pointer given by value: devgrad's NULL
                continue
            if not (isinstance(arg, np.ndarray) and not arg.dtype.names and fits(arg.dtype)):
                raise TypeError(f"{kernel}: parameter {ctype} {name} ({np.dtype(element) if base == 'T' else base} "
                                f"data) got {type(arg).__name__} {getattr(arg, 'dtype', '')}")
            if device_array["type"] is not None and not isinstance(arg, device_array["type"]):
                raise TypeError(f"{kernel}: parameter {ctype} {name} got a host array where the GPU reads device "
                                "memory (move it with the device's put/to_device first)")
        elif ctype == "devgrad_table":
            if not (isinstance(arg, np.ndarray) and arg.dtype.names and arg.size == 1):
                raise TypeError(f"{kernel}: parameter {name} is a devgrad_table passed by value: a 1-element "
                                f"structured array, got {type(arg).__name__}")
        elif ctype not in _BY_VALUE:
            raise TypeError(f"{kernel}: parameter {ctype} {name}: a C type the harness does not know; add it to "
                            "_BY_VALUE (by value) or _POINTEE (pointed to)")
        elif type(arg) is not _BY_VALUE[ctype]:
            raise TypeError(f"{kernel}: parameter {ctype} {name} needs a {_BY_VALUE[ctype].__name__} (CuPy passes a "
                            f"scalar by its own size), got {type(arg).__name__}")


class HostFunction:
    """A kernel of the host build, called as CuPy calls a RawModule function; each launch's
    arguments are checked against the kernel's declaration (``check_arguments``)."""

    def __init__(self, library, name: str, params: list | None = None):
        self.name = name
        self.fn = getattr(library, name)
        self.params = params if params is not None else _host_signatures()[name]
        self.calls = 0

    def __call__(self, grid, block, args):
        assert len(grid) >= 1 and len(block) >= 1 and grid[0] >= 1 and block[0] >= 1, (grid, block)
        check_arguments(self.name, self.params, args)
        self.calls += 1
        self.fn(*[_c_arg(a) for a in args])


class HostRawModule:
    """``cupy.RawModule`` over the host build of the same source."""

    def __init__(self, code: str, options=()):
        self.library = _build(HOST_PRELUDE + code)
        self.signatures = signatures(code)

    def get_function(self, name: str) -> HostFunction:
        return HostFunction(self.library, name, self.signatures[name])


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
