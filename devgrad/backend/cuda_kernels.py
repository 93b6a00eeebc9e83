"""CUDA's fused kernels, launched through CuPy, and the GEMM seam's CUDA side.

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

import contextlib
import functools
import math
import warnings
from typing import Any

import numpy as np

from devgrad.backend import cublas, gemm
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
    if t_dtype is not None and t_dtype not in CTYPE:
        if t_dtype.kind != "f":
            raise TypeError(f"{name}: devgrad's kernels take floating-point arrays, got {t_dtype}")
        return _launch_widened(name, t_dtype, args)
    if not same:
        shapes = [value.shape for (kind, _, _), value in zip(kinds, args) if kind in _ELEMENTS]
        shape = max(shapes, key=len)
        if not all(_trailing(other, shape) for other in shapes):  # not just a bias along the last axes
            shape = np.broadcast_shapes(*shapes)
    n = math.prod(shape)
    if len(args) == n_ins:
        args = (*args, *(cp.empty(shape, dtype=t_dtype) for _ in kinds[n_ins:]))
    kargs, copy_back = [], []
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
    if n:
        run_kernel(name, CTYPE[t_dtype], n, *kargs)
    for target, scratch in copy_back:
        target[...] = scratch
    results = args[n_ins:]
    return results[0] if len(results) == 1 else tuple(results)


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


# -- the GEMM seam ---------------------------------------------------------------------------

GEMM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def address(array) -> int:
    """The device address of an array's first element."""
    return array.data.ptr


def current_stream() -> int:
    """The handle of CuPy's current stream (0: the default stream)."""
    return module().cuda.get_current_stream().ptr


def device_index(array) -> int:
    return array.device.id


def capturing() -> bool:
    """True while CuPy's current stream is recording a CUDA graph."""
    return bool(module().cuda.get_current_stream().is_capturing())


def plan(x, y):
    """The GEMM plan for 2-D-or-more x @ y, making an operand contiguous when its layout cannot
    be passed to cuBLAS as it is (a copy: a kernel, so capturable too)."""
    found = _layout_plan(x.shape, x.strides, y.shape, y.strides, x.itemsize)
    if found is not None:
        return found, x, y
    cp = module()
    x, y = cp.ascontiguousarray(x), cp.ascontiguousarray(y)
    found = _layout_plan(x.shape, x.strides, y.shape, y.strides, x.itemsize)
    if found is not None:
        return found, x, y
    # batch dimensions broadcast in a way no single stride walks: materialise them
    batch = gemm.result_shape(x.shape, y.shape)[:-2]
    x = cp.ascontiguousarray(cp.broadcast_to(x, (*batch, *x.shape[-2:])))
    y = cp.ascontiguousarray(cp.broadcast_to(y, (*batch, *y.shape[-2:])))
    found = _layout_plan(x.shape, x.strides, y.shape, y.strides, x.itemsize)
    if found is None:  # contiguous operands always have one
        raise RuntimeError(f"matmul: no cuBLAS layout for {x.shape} @ {y.shape}")
    return found, x, y


@functools.lru_cache(maxsize=1024)
def _layout_plan(x_shape: tuple, x_strides: tuple, y_shape: tuple, y_strides: tuple, itemsize: int):
    """``gemm.plan`` for operands with these shapes and byte strides, remembered: a training step
    asks for the same few layouts every time, and planning is pure Python on the host's time."""
    return gemm.plan(x_shape, tuple(s // itemsize for s in x_strides),
                     y_shape, tuple(s // itemsize for s in y_strides))


def matmul(x, y, precision: str | None = None, alpha: float = 1.0):
    """``x @ y`` with ``numpy.matmul``'s rules (times ``alpha``, a host number, when given).
    float32/float64 operands of one dtype go to cuBLAS through ctypes in any transpose/stride
    layout (strided-batched for batches), which works while a CUDA graph is being captured;
    anything else goes to ``cupy.matmul``, which cannot be captured (a clear error then).
    ``precision`` None: the process-wide setting."""
    cp = module()
    if x.dtype != y.dtype or x.dtype not in GEMM_DTYPES:
        if capturing():
            raise RuntimeError(f"matmul of {x.dtype} {x.shape} @ {y.dtype} {y.shape} cannot be captured into a CUDA "
                               "graph: only float32 or float64 operands of one dtype go through the capturable "
                               "cuBLAS path. Cast the operands first, e.g. .to(dg.float32)")
        out = cp.matmul(x, y)
        return out if alpha == 1.0 else out * alpha
    squeeze_rows, squeeze_cols = x.ndim == 1, y.ndim == 1
    if squeeze_rows:
        x = x[None, :]
    if squeeze_cols:
        y = y[:, None]
    if x.ndim > 2 and y.ndim == 2 and x.flags.c_contiguous:
        # a batch of rows times one matrix (Linear on 3-D input): one GEMM over all rows
        out = matmul(x.reshape(-1, x.shape[-1]), y, precision, alpha).reshape(*x.shape[:-1], y.shape[-1])
    else:
        out = _gemm(x, y, precision, cp, alpha)
    if squeeze_rows:
        out = out[..., 0, :]
    if squeeze_cols:
        out = out[..., 0]
    return out


def _gemm(x, y, precision, cp, alpha=1.0, out=None):
    """x @ y (2-D or more) into ``out`` (a C-contiguous array of the result's shape), or a new array."""
    shape = (x.shape[0], y.shape[1]) if x.ndim == 2 == y.ndim else gemm.result_shape(x.shape, y.shape)
    if out is None:
        out = cp.empty(shape, dtype=x.dtype)
    if out.size == 0:
        return out
    if x.shape[-1] == 0:  # an empty sum
        out.fill(0)
        return out
    found, x, y = plan(x, y)
    cublas.gemm(found, x.itemsize, address(y), address(x), address(out), index=device_index(out),
                stream=current_stream(), precision=precision, alpha=alpha)
    return out


# -- sums without CUB: a GEMM with a ones vector ------------------------------------------------
# CuPy's default sum goes through CUB, whose kernels take seconds to compile on a fresh machine;
# a sum over the leading (or trailing) axes of a contiguous float array is a product with a
# ones vector: cuBLAS (nothing to compile, capturable) at memory bandwidth, in full float32
# (never TF32: the ones are exact, the data must stay so too).

_ONES_KEEP = 16
_ones: dict = {}  # (device id, dtype, length) -> a ones vector
# While a graph is being recorded, the ones vectors it reads, so that the graph keeps them alive:
# one dropped from the cache later must not have its memory handed to anyone else (a replay
# would read it). None when nothing is being recorded.
_recording: list | None = None


def _ones_vector(n: int, dtype):
    key = (current_device(), np.dtype(dtype), n)
    ones = _ones.get(key)
    if ones is None:
        ones = full(n, 1.0, dtype)
        # One made while a graph is recorded is the graph's alone (kept below): its memory comes
        # from the graph's pool and its fill runs only on replays, so an eager sum reading it from
        # the cache would see it unfilled, and once the graph is gone, freed.
        if not capturing():
            if len(_ones) >= _ONES_KEEP:
                _ones.pop(next(iter(_ones)))
            _ones[key] = ones
    if _recording is not None:
        _recording.append(ones)
    return ones


@contextlib.contextmanager
def keep_alive_for_graph():
    """``with keep_alive_for_graph() as kept:`` around a capture: ``kept`` then holds every
    cached array the captured kernels read (the graph's owner keeps it as long as the graph)."""
    global _recording
    previous, _recording = _recording, []
    try:
        yield _recording
    finally:
        _recording = previous


def sum_axes(a, axes: tuple, scale: float | None = None):
    """``a`` summed over ``axes`` (times ``scale`` when given: a mean is a sum scaled by 1/n): a
    GEMM with a ones vector, the scale its alpha, when the axes are the leading or the trailing
    ones of a contiguous float32/float64 array, else CuPy's sum."""
    nd = a.ndim
    order = sorted({ax % nd for ax in axes}) if nd else []
    k = len(order)
    alpha = 1.0 if scale is None else float(scale)
    if a.dtype in GEMM_DTYPES and a.size and k and a.flags.c_contiguous:
        shape = a.shape
        cp = module()
        # The result is a fresh array the GEMM writes into (not a view of a 2-D product): a
        # gradient that owns its memory is stored as it is, where a view would be copied.
        if order == list(range(k)):  # leading axes: ones(1, m) @ a(m, rest)
            m = math.prod(shape[:k])
            out = cp.empty(shape[k:], dtype=a.dtype)
            _gemm(_ones_vector(m, a.dtype).reshape(1, m), a.reshape(m, -1), "highest", cp, alpha,
                  out=out.reshape(1, -1))
            return out
        if order == list(range(nd - k, nd)):  # trailing axes: a(rest, m) @ ones(m, 1)
            m = math.prod(shape[nd - k:])
            out = cp.empty(shape[:nd - k], dtype=a.dtype)
            _gemm(a.reshape(-1, m), _ones_vector(m, a.dtype).reshape(m, 1), "highest", cp, alpha,
                  out=out.reshape(-1, 1))
            return out
    out = module().sum(a, axis=tuple(order))
    return out if scale is None else out * scale
