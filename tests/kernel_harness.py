"""Run devgrad's CUDA kernel bodies without a GPU.

Each fused CuPy ElementwiseKernel in ``devgrad.backend.cuda_sources.ELEMENTWISE`` is a body of C++ run
once per element with references to that element of every argument. This harness wraps the
same body in a plain loop, the way CuPy wraps it in a grid-stride loop, so that it can be
compiled by NVRTC (does it compile for the GPU?) and by the host C++ compiler (does it
compute what the NumPy backend computes?).
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from devgrad.backend.cuda_sources import ELEMENTWISE

C_TYPES = {"float": np.float32, "double": np.float64}
SCALAR_C = {"float64": "double", "int32": "int", "int64": "long long"}


def parse(name: str):
    """(in params, out params) of kernel ``name``, each a list of (raw, type, name)."""
    in_params, out_params, _ = ELEMENTWISE[name]

    def one(text):
        words = text.split()
        return (True, words[1], words[2]) if words[0] == "raw" else (False, words[0], words[1])

    return [one(p) for p in in_params.split(",")], [one(p) for p in out_params.split(",")]


def source(name: str, ctype: str, gpu: bool) -> str:
    """The kernel body of ``name`` for T = ``ctype``, in a CUDA kernel (gpu) or a host function.
    Element parameters become references to element i (as in CuPy), raw ones plain pointers."""
    ins, outs = parse(name)
    body = ELEMENTWISE[name][2]
    args, refs = [], []
    for param in ins + outs:
        raw, typ, pname = param
        c = "T" if typ == "T" else SCALAR_C[typ]
        const = "" if param in outs else "const "
        if raw:
            args.append(f"{const}{c}* {pname}")
        elif typ == "T":
            args.append(f"T* _raw_{pname}")
            refs.append(f"{const}T &{pname} = _raw_{pname}[i];")
        else:
            args.append(f"const {c} {pname}")
    loop = ("for (long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)" if gpu
            else "for (long i = 0; i < n; ++i)")
    head = "" if gpu else "#include <cmath>\nusing namespace std;\n"
    qualifier = "__global__ void" if gpu else "void"
    return (f"{head}namespace k_{name}_{ctype} {{\ntypedef {ctype} T;\n"
            f"extern \"C\" {qualifier} k_{name}_{ctype}({', '.join(args)}, long n) {{\n{loop} {{\n"
            + "\n".join(refs) + f"\n{body};\n}}\n}}\n}}\n")


def compiler() -> str | None:
    return shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


_library: dict = {}


def host_library():
    """All kernels for float and double, compiled for the host CPU (cached per kernel set)."""
    text = "\n".join(source(name, ctype, gpu=False) for name in ELEMENTWISE for ctype in C_TYPES)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    if key not in _library:
        folder = Path(tempfile.mkdtemp(prefix="devgrad-kernels-"))
        (folder / "kernels.cpp").write_text(text)
        subprocess.run([compiler(), "-O1", "-shared", "-fPIC", "-o", str(folder / "kernels.so"),
                        str(folder / "kernels.cpp")], check=True, capture_output=True, text=True)
        _library[key] = ctypes.CDLL(str(folder / "kernels.so"))
    return _library[key]


def run_on_host(name: str, **values) -> None:
    """Run kernel ``name`` once per element of its (same-shaped) element arrays; outputs are
    updated in place. Raw arrays may have any size; scalar parameters are numbers."""
    ins, outs = parse(name)
    elements = [values[p] for raw, t, p in ins + outs if t == "T" and not raw]
    dtype, n = elements[0].dtype, elements[0].size
    ctype = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[dtype]
    args = []
    for raw, typ, pname in ins + outs:
        value = values[pname]
        if raw or typ == "T":
            want = dtype if typ == "T" else np.dtype(typ)
            assert value.dtype == want and value.flags.c_contiguous, pname
            assert raw or value.size == n, pname
            args.append(value.ctypes.data_as(ctypes.c_void_p))
        elif typ == "float64":
            args.append(ctypes.c_double(value))
        else:
            args.append(ctypes.c_int(int(value)))
    getattr(host_library(), f"k_{name}_{ctype}")(*args, ctypes.c_long(n))


class HostElementwiseKernel:
    """``cupy.ElementwiseKernel`` as far as devgrad uses it, run on NumPy arrays by the host build.

    Like CuPy: arguments bind to the in-params then the out-params by position; non-raw arrays
    broadcast together (a 0-d array where a scalar is declared broadcasts too); out-params
    that are not given are allocated; every array typed ``T`` must have one and the same dtype,
    and an array for a declared type must have exactly that type (CuPy raises TypeError).
    """

    def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel"):
        self.name = name.removeprefix("devgrad_")
        self.ins, self.outs = parse(self.name)
        assert ELEMENTWISE[self.name][2] == operation

    def __call__(self, *args):
        params = self.ins + self.outs
        if len(args) not in (len(self.ins), len(params)):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.ins)} inputs and "
                            f"{len(self.outs)} outputs")
        t_dtype = None
        for (_, typ, pname), value in zip(params, args):
            if isinstance(value, np.ndarray):
                if typ == "T":
                    if t_dtype is not None and value.dtype != t_dtype:
                        raise TypeError(f"{self.name}: Type is mismatched. {pname} {value.dtype} {t_dtype} T")
                    t_dtype = value.dtype
                elif value.dtype != np.dtype(typ):
                    raise TypeError(f"{self.name}: Type is mismatched. {pname} {value.dtype} {typ}")
        shape = np.broadcast_shapes(*[np.shape(v) for (raw, t, p), v in zip(params, args)
                                      if not raw and isinstance(v, np.ndarray)])
        args = list(args)
        if len(args) == len(self.ins):
            args += [np.empty(shape, dtype=t_dtype) for _ in self.outs]
        values = {}
        for (raw, typ, pname), value in zip(params, args):
            if raw or (isinstance(value, np.ndarray) and value.shape == shape and value.flags.c_contiguous):
                values[pname] = value if value.flags.c_contiguous else np.ascontiguousarray(value)
            elif isinstance(value, np.ndarray) and typ == "T":
                values[pname] = np.ascontiguousarray(np.broadcast_to(value, shape))
            elif isinstance(value, np.ndarray):  # a 0-d array where a scalar type is declared
                values[pname] = value.item()
            else:
                values[pname] = value
        run_on_host(self.name, **values)
        results = []
        for (_, _, pname), value in zip(self.outs, args[len(self.ins):]):
            if value is not values[pname]:
                np.copyto(value, values[pname].reshape(value.shape))
            results.append(value)
        return results[0] if len(results) == 1 else tuple(results)


class _HostCupy:
    """A stand-in for the cupy module: NumPy's functions, and HostElementwiseKernel."""

    ElementwiseKernel = HostElementwiseKernel

    def __getattr__(self, name):
        return getattr(np, name)


def host_cupy():
    """A stand-in for the cupy module with what devgrad's CUDA backend calls, on NumPy."""
    return _HostCupy()
