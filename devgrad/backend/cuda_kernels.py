"""CUDA's fused kernels, launched through CuPy (the GEMM seam's CUDA side is ``cuda_gemm``).

Reached as ``device.kernels.<name>`` on a GPU; ``devgrad.backend.cpu_kernels`` has the same
functions for the CPU. The kernel bodies are in ``cuda_sources``, generated into one CUDA
source per group ("step", "more") and dtype: one ``cupy.RawModule`` (one NVRTC compilation,
cached on disk by CuPy) per GPU, group and dtype, built when one of its kernels first runs;
``launch`` calls them with ElementwiseKernel's binding rules, and the ``*_many`` updates run a
whole parameter group in one launch.

One elementwise kernel where NumPy needs a chain of in-place calls: on a GPU each call is a
launch (several microseconds of host time) and a pass over memory. Scalars that change from
step to step (lr, the Adam step count) are parameters that take a number or a 0-d device
array alike, so the same kernel serves eager steps and steps captured in a CUDA graph (which
must read them from device memory). Arithmetic is in double and rounded once to T. Every
array bound to a ``T`` placeholder is first cast to one dtype: CuPy, unlike NumPy, does not
promote there.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from devgrad.backend import cublas
from devgrad.backend.cuda_sources import (NVRTC_OPTIONS, ELEMENTWISE, KERNELS, function_name, group_of, module_source,
                                           params, prebuilt_path)
from devgrad.backend.cupy_import import kernel_cache_dir, module


def scatter_add(target, index, values) -> None:
    """target[index] += values, accumulating repeated indices (atomic adds on the GPU)."""
    import cupyx  # noqa: PLC0415 - part of the optional CuPy, present when this runs

    cupyx.scatter_add(target, index, values)


# -- one module of kernels per device, group and dtype ------------------------------------------

BLOCK = 256  # threads per block; grid-stride loops cover any n with at most MAX_BLOCKS blocks
MAX_BLOCKS = 8192
PARAMS = {name: params(name) for name in ELEMENTWISE}
CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_modules: dict = {}  # (device id, ctype, group) -> the RawModule of that group's kernels for that ctype
_functions: dict = {}  # (device id, function name) -> the loaded kernel
_launched: set = set()  # kernel names launched in this process (for tests and diagnostics)


def current_device() -> int:
    return module().cuda.runtime.getDevice()


# The group each kernel function is compiled in (the step counts' increment is the step group's).
_GROUP = {function_name(name, ctype): group_of(name) for name in KERNELS for ctype in ("float", "double")}


def function(fname: str, ctype: str):
    """Kernel ``fname`` of its group's module for ``ctype`` on the current GPU: the module is
    compiled by NVRTC once (one compilation for all of the group's kernels; CuPy keeps the binary
    in its disk cache), or loaded ready-made when ``devgrad warmup --arch`` built it for this GPU's
    architecture."""
    key = (current_device(), fname)
    fn = _functions.get(key)
    if fn is None:
        module_key = (key[0], ctype, _GROUP.get(fname, "step"))
        mod = _modules.get(module_key)
        if mod is None:
            mod = _modules[module_key] = _load_module(ctype, module_key[2])
        fn = _functions[key] = _Counted(mod.get_function(fname))
    return fn


_launches = [0]  # kernels of devgrad's module launched in this process


class _Counted:
    """A kernel of the module that counts its launches (``launch_counts``)."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, grid, block, args):
        _launches[0] += 1
        return self.fn(grid, block, args)


def launch_counts() -> dict:
    """How many of devgrad's kernels and cuBLAS GEMMs this process has launched (on every GPU):
    the difference around a step is its launch count, which ``devgrad bench`` reports."""
    return {"kernels": _launches[0], "gemms": cublas.calls()}


def _load_module(ctype: str, group: str = "step"):
    """The RawModule of ``group``'s kernels for ``ctype`` on the current GPU: the ready-made one
    for its architecture when there is one (and it loads), else compiled from the source."""
    cp = module()
    path = prebuilt_path(kernel_cache_dir(), ctype, str(cp.cuda.Device().compute_capability), group)
    if path.exists():
        try:
            mod = cp.RawModule(path=str(path))
            first = next(name for name in KERNELS if group_of(name) == group)
            mod.get_function(function_name(first, ctype))  # loads it now: a bad file fails here
            return mod
        except Exception as exc:  # a truncated or foreign file: compile instead, and say so
            warnings.warn(f"devgrad: could not load the ready-made kernels {path} ({type(exc).__name__}: {exc}); "
                          "compiling them instead", RuntimeWarning, stacklevel=3)
    return cp.RawModule(code=module_source((ctype,), group=group), options=NVRTC_OPTIONS)


def blocks(n: int) -> tuple:
    return (min((n + BLOCK - 1) // BLOCK, MAX_BLOCKS),)


def run_kernel(name: str, ctype: str, n: int, *args) -> None:
    """Launch kernel ``name`` of the ``ctype`` module over ``n`` elements (its last parameter)."""
    _launched.add(name)
    function(function_name(name, ctype), ctype)(blocks(n), (BLOCK,), (*args, np.int64(n)))


def _trailing(shape: tuple, full: tuple) -> bool:
    """True when an array of ``shape`` broadcasts against ``full`` by repeating along leading
    axes only (its element i % size is element i of the broadcast): a bias, a 0-d array."""
    while shape and shape[0] == 1:
        shape = shape[1:]
    return not shape or tuple(full[len(full) - len(shape):]) == tuple(shape)


# Each kernel's parameters, in order, as (kind, name, scalar type): kind "in" / "out" (an element
# array), "rawT" (a pointer to T), "raw" (a pointer to another type), "f64" (a number or a 0-d
# device array), "scalar" (a number of the given NumPy type). Worked out once, so that a launch
# only walks the list.
def _kind(raw: bool, typ: str, is_input: bool) -> str:
    if typ == "T":
        return "rawT" if raw else "in" if is_input else "out"
    return "raw" if raw else "f64" if typ == "float64" else "scalar"


_KINDS: dict[str, list[tuple[str, str, Any]]] = {
    name: [(_kind(raw, typ, i < len(ins)), pname, None if raw or typ in ("T", "float64") else np.dtype(typ).type)
           for i, (raw, typ, pname) in enumerate(ins + outs)]
    for name, (ins, outs) in PARAMS.items()}
_ELEMENTS, _TYPED, _POINTERS = frozenset({"in", "out"}), frozenset({"in", "out", "rawT"}), frozenset({"raw", "rawT"})
_READS_OUTPUT = frozenset(name for name in ELEMENTWISE if name.startswith(("bias_", "dropout", "wrap_top")))
_NULL, _ZERO_F64 = np.uint64(0), np.float64(0.0)  # a float64 scalar given as a number: no pointer


def launch(name: str, *args):
    """Run kernel ``name`` of ``ELEMENTWISE`` with ``cupy.ElementwiseKernel``'s binding rules:
    arguments bind to the in-params then the out-params by position; element arrays broadcast
    together; out-params not given are allocated (and returned); every ``T`` array must have
    one dtype (a TypeError otherwise); a float64 scalar takes a number or a 0-d device array.

    This runs once per launch on the host's time (a GPU step is bound by it for small models),
    so the common case (element arrays of one shape, contiguous) takes the shortest path."""
    cp = module()
    kinds = _KINDS[name]
    n_ins = len(PARAMS[name][0])
    if len(args) != n_ins and len(args) != len(kinds):
        raise TypeError(f"{name}: {len(args)} arguments for {n_ins} inputs and {len(kinds) - n_ins} outputs")
    t_dtype, shape = _dtype_and_shape(name, kinds, args)
    if t_dtype is not None and t_dtype not in CTYPE:
        if t_dtype.kind != "f":
            raise TypeError(f"{name}: devgrad's kernels take floating-point arrays, got {t_dtype}")
        return _launch_widened(name, t_dtype, args)
    n = math.prod(shape)
    if len(args) == n_ins:
        args = (*args, *(cp.empty(shape, dtype=t_dtype) for _ in kinds[n_ins:]))
    kargs, copy_back = _bind(cp, name, kinds, args, shape, t_dtype)
    if n:
        run_kernel(name, CTYPE[t_dtype], n, *kargs)
    for target, scratch in copy_back:
        target[...] = scratch
    results = args[n_ins:]
    return results[0] if len(results) == 1 else tuple(results)


def _dtype_and_shape(name: str, kinds, args):
    """The launch's ``T`` dtype (every typed array must share it) and its element shape: the
    common shape, else the longest when the others trail it (a bias), else the broadcast."""
    t_dtype, same = None, True
    shape: Any = None  # the first element array's, then the launch's
    for (kind, pname, _), value in zip(kinds, args):
        if kind in _TYPED:
            if t_dtype is None:
                t_dtype = value.dtype
            elif value.dtype != t_dtype:
                raise TypeError(f"{name}: Type is mismatched. {pname} {value.dtype} {t_dtype} T")
            if kind != "rawT":
                if shape is None:
                    shape = value.shape
                elif value.shape != shape:
                    same = False
    if not same:
        shapes = [value.shape for (kind, _, _), value in zip(kinds, args) if kind in _ELEMENTS]
        shape = max(shapes, key=len)
        if not all(_trailing(other, shape) for other in shapes):  # not just a bias along the last axes
            shape = np.broadcast_shapes(*shapes)
    return t_dtype, shape


def _bind(cp, name: str, kinds, args, shape, t_dtype):
    """The kernel's argument list (element arrays with their sizes, scalars, pointers) and the
    (target, scratch) pairs whose results are copied into non-contiguous outputs after the run."""
    kargs: list = []
    copy_back: list = []
    for (kind, pname, scalar), value in zip(kinds, args):
        if kind in _ELEMENTS:
            if not value.flags.c_contiguous or value.shape != shape:
                if kind == "out":
                    scratch = cp.empty(shape, dtype=t_dtype)  # computed here, copied into place after
                    if name in _READS_OUTPUT:  # in-place kernels read their output
                        scratch[...] = value
                    copy_back.append((value, scratch))
                    value = scratch
                elif not (value.flags.c_contiguous and _trailing(value.shape, shape)):
                    value = cp.ascontiguousarray(cp.broadcast_to(value, shape))
            kargs += [value, np.int64(value.size)]
        elif kind == "f64":
            if isinstance(value, cp.ndarray):  # a 0-d device array (a host number, NumPy's too, is a value)
                kargs += [value if value.dtype == np.float64 else value.astype(np.float64), _ZERO_F64]
            else:
                kargs += [_NULL, np.float64(value)]
        elif kind in _POINTERS:
            if not value.flags.c_contiguous:
                raise ValueError(f"{name}: {pname} must be C-contiguous")
            kargs.append(value)
        else:
            kargs.append(scalar(value))
    return kargs, copy_back


def _launch_widened(name: str, dtype, args):
    """``launch`` for T arrays of a float dtype the module is not built for (float16): the
    kernel runs on float64 copies (its arithmetic is in double anyway) and each result is rounded
    once into ``dtype``: outputs that were given are written back in place, the others returned."""
    kinds = _KINDS[name]
    n_ins = len(PARAMS[name][0])
    wide = [value.astype(np.float64) if kind in _TYPED else value for (kind, _, _), value in zip(kinds, args)]
    results = launch(name, *wide)
    if len(args) == len(kinds):  # the outputs were given: write them back
        for target, value in zip(args[n_ins:], wide[n_ins:]):
            target[...] = value
        return args[n_ins] if len(kinds) - n_ins == 1 else tuple(args[n_ins:])
    if isinstance(results, tuple):
        return tuple(r.astype(dtype) for r in results)
    return results.astype(dtype)


def sigmoid(x):
    return launch("sigmoid", x)


def act_grad(act: str, g, y):
    if g.dtype != y.dtype:  # a kernel's T-typed arrays must share one dtype
        g = g.astype(y.dtype)
    return launch(f"{act}_grad", g, y)


def fill_(out, value: float):
    """Every element of ``out`` set to ``value``, in place; returns ``out``. A float32/float64
    array takes one kernel of devgrad's module (the one this GPU already compiled, whichever its
    dtype: the value is written as words); zero, or another dtype, CuPy's fill (a memset for
    zero)."""
    if out.size and value != 0 and out.dtype in CTYPE and out.flags.c_contiguous:
        words = np.array(value, dtype=out.dtype).reshape(1).view(np.uint32)
        lo, hi = words[0], words[-1]  # a float32's one word twice; a float64's low and high halves
        run_kernel("fill", compiled_ctype(CTYPE[out.dtype]), out.nbytes // 4, lo, hi, out)
    else:
        out.fill(value)
    return out


def full(shape, value: float, dtype):
    """A new array of ``shape`` and ``dtype`` filled with ``value`` (``fill_``)."""
    return fill_(module().empty(shape, dtype=dtype), value)


def unit_interval_(u):
    """cuRAND's uniform draws, in (0, 1], moved into [0, 1) in place: 1 becomes 0."""
    launch("wrap_top", 1.0, u)
    return u


def mul(a, b):
    """a × b, one kernel (a and b of one shape, or b broadcasting along a's leading axes)."""
    if b.dtype != a.dtype:
        b = b.astype(a.dtype)
    return launch("mul", a, b)


def bias_act_(out, bias, act: str):
    if bias is None:
        bias = module().zeros((), dtype=out.dtype)
    elif bias.dtype != out.dtype:
        bias = bias.astype(out.dtype)
    launch(f"bias_{act}", bias, out)
    return out


def address(array) -> int:
    """The device address of an array's first element."""
    return array.data.ptr


def contiguous(array):
    return array if array.flags.c_contiguous else module().ascontiguousarray(array)


def gather_rows(src, index):
    """``src[index]`` for a 1-D int64 ``index`` into the first axis (the loader's shuffle): one
    launch of a word-copying kernel for a C-contiguous array whose rows are whole 32-bit words
    (float features, int64 labels), in a module this device already compiled when there is
    one; CuPy's ``take`` (one more compilation per dtype) otherwise."""
    cp = module()
    row_bytes = src.itemsize * math.prod(src.shape[1:])
    if not (src.ndim and src.flags.c_contiguous and row_bytes % 4 == 0 and index.ndim == 1) or not index.size:
        return src[index]
    out = cp.empty((index.size, *src.shape[1:]), dtype=src.dtype)
    words = row_bytes // 4
    n = index.size * words
    if n:
        ctype = CTYPE.get(np.dtype(src.dtype)) or compiled_ctype()
        run_kernel("gather_rows", ctype, n, src, contiguous(index.astype(np.int64, copy=False)), out, np.int64(words))
    return out


def compiled_ctype(preferred: str = "float") -> str:
    """For a kernel that works on words (the same in either module): the element type of a kernel
    module already built for the current GPU (``preferred`` first), else ``preferred``."""
    device = current_device()
    for ctype in (preferred, "double" if preferred == "float" else "float"):
        if (device, ctype, "step") in _modules:
            return ctype
    return preferred
