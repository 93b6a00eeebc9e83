"""Run devgrad's CUDA kernel bodies without a GPU.

Each fused CuPy ElementwiseKernel in ``devgrad.backend.cupy._KERNELS`` is a body of C++ run
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

from devgrad.backend import cupy as cuda_backend

C_TYPES = {"float": np.float32, "double": np.float64}
SCALAR_C = {"float64": "double", "int32": "int"}


def parse(name: str):
    """(in params, out params) of kernel ``name`` as lists of (type, name)."""
    in_params, out_params, _ = cuda_backend._KERNELS[name]
    split = [tuple(p.split()) for p in in_params.split(",")], [tuple(p.split()) for p in out_params.split(",")]
    return split


def source(name: str, ctype: str, gpu: bool) -> str:
    """The kernel body of ``name`` for T = ``ctype``, in a CUDA kernel (gpu) or a host function."""
    ins, outs = parse(name)
    body = cuda_backend._KERNELS[name][2]
    args, refs = [], []
    for typ, pname in ins + outs:
        if typ == "T":
            args.append(f"T* _raw_{pname}")
            const = "" if (typ, pname) in outs else "const "
            refs.append(f"{const}T &{pname} = _raw_{pname}[i];")
        else:
            args.append(f"const {SCALAR_C[typ]} {pname}")
    loop = ("for (long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)" if gpu
            else "for (long i = 0; i < n; ++i)")
    head = "" if gpu else "#include <cmath>\nusing namespace std;\n"
    qualifier = '__global__ void' if gpu else 'void'
    return (f"{head}namespace k_{name}_{ctype} {{\ntypedef {ctype} T;\n"
            f"extern \"C\" {qualifier} k_{name}_{ctype}({', '.join(args)}, long n) {{\n{loop} {{\n"
            + "\n".join(refs) + f"\n{body};\n}}\n}}\n}}\n")


def compiler() -> str | None:
    return shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


_library: dict = {}


def host_library():
    """All kernels for float and double, compiled for the host CPU (cached per kernel set)."""
    text = "\n".join(source(name, ctype, gpu=False) for name in cuda_backend._KERNELS for ctype in C_TYPES)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    if key not in _library:
        folder = Path(tempfile.mkdtemp(prefix="devgrad-kernels-"))
        (folder / "kernels.cpp").write_text(text)
        subprocess.run([compiler(), "-O1", "-shared", "-fPIC", "-o", str(folder / "kernels.so"),
                        str(folder / "kernels.cpp")], check=True, capture_output=True, text=True)
        _library[key] = ctypes.CDLL(str(folder / "kernels.so"))
    return _library[key]


def run_on_host(name: str, **values) -> None:
    """Run kernel ``name`` over arrays of one shape and dtype (outputs are updated in place);
    scalar parameters are given as numbers."""
    ins, outs = parse(name)
    arrays = [values[p] for t, p in ins + outs if t == "T"]
    dtype, n = arrays[0].dtype, arrays[0].size
    ctype = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[dtype]
    args = []
    for typ, pname in ins + outs:
        value = values[pname]
        if typ == "T":
            assert value.dtype == dtype and value.size == n and value.flags.c_contiguous, pname
            args.append(value.ctypes.data_as(ctypes.c_void_p))
        elif typ == "float64":
            args.append(ctypes.c_double(value))
        else:
            args.append(ctypes.c_int(int(value)))
    getattr(host_library(), f"k_{name}_{ctype}")(*args, ctypes.c_long(n))
